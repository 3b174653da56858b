"""Checks of task `device_helpers`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail

from .probes import probe_default_device, probe_device_loader, probe_to_device


def in_words(value):
    """A returned value described in the student's terms (from the probes' plain descriptions)."""
    kind = value.get("type")
    if kind == "tensor":
        return f"a tensor on the {value['device']} device"
    if kind in ("list", "tuple"):
        return f"a {kind} of [" + ", ".join(in_words(v) for v in value["items"]) + "]"
    if kind == "error":
        return f"nothing: it raised {value['error']}"
    return "None" if kind == "none" else f"a {kind}"


@pytest.mark.device_helpers
def test_default_device_follows_cuda(student):
    out = student.probe(probe_default_device, label="`get_default_device`")
    for flag, want in (("True", "cuda"), ("False", "cpu")):
        got = out[flag]
        when = "while a GPU was available" if flag == "True" else "while no GPU was available"
        if not isinstance(got, torch.device):
            kind, text = ("str", got) if isinstance(got, str) else (got["type"], got["text"])
            fail(f"get_default_device() returned a {kind} ({text!r}) {when}; return a torch.device, "
                 f"e.g. torch.device('{want}').")
        expect(got.type == want,
               f"get_default_device() returned torch.device('{got}') {when}; expected "
               f"torch.device('{want}'). Ask torch.cuda.is_available() each time it is called.")


@pytest.mark.device_helpers
def test_to_device_moves_and_returns(student):
    out = student.probe(probe_to_device, label="`to_device`")
    one = out["one"]
    expect(one.get("type") == "tensor" and one.get("device") == "meta" and one.get("shape") == (3, 2),
           f"to_device(X, device) should return X moved to that device; it returned {in_words(one)}. "
           "Tensor.to returns a new tensor: return it, and use the device argument.")
    for key, kind in (("pair", "list"), ("tuple", "tuple")):
        value = out[key]
        items = value.get("items")
        expect(items is not None and len(items) == 2
               and all(i.get("type") == "tensor" and i.get("device") == "meta" for i in items),
               f"to_device on a {kind} (X, y) should return a {kind} of both tensors moved to the device; it "
               f"returned {in_words(value)}.")
    nested = out["nested"]
    ok = (nested.get("items") is not None and len(nested["items"]) == 2
          and (nested["items"][0].get("items") or [{}])[0].get("device") == "meta"
          and all(i.get("device") == "meta" for i in nested["items"][0].get("items") or [{}])
          and nested["items"][1].get("device") == "meta")
    expect(ok, "to_device on a nested list [[X, y], X] should move every tensor inside (call to_device on each "
           f"item, recursively); it returned {in_words(nested)}.")
    back = out["back"]
    expect(back is not None, "to_device(X, torch.device('cpu')) should return a tensor.")
    expect_close(back, out["X"], "to_device(X, torch.device('cpu')) for X already on the CPU", rtol=0, atol=0)


@pytest.mark.device_helpers
def test_device_data_loader(student):
    out = student.probe(probe_device_loader, label="`DeviceDataLoader`")
    expect(out["len"] == 3, f"len(DeviceDataLoader(dl, device)) is {out['len']}; it should equal len(dl) = 3 "
           "batches (10 examples in batches of 4).")
    expected = [[((4, 1, 28, 28), "meta"), ((4,), "meta")], [((4, 1, 28, 28), "meta"), ((4,), "meta")],
                [((2, 1, 28, 28), "meta"), ((2,), "meta")]]
    for number_, batches in enumerate(out["passes"], start=1):
        expect(len(batches) == 3,
               f"Pass {number_} over a DeviceDataLoader gave {len(batches)} batches instead of 3: __iter__ should "
               "start a fresh pass over the wrapped loader every time it is called.")
        devices = sorted({d for batch in batches for item in batch if item for _, d in [item]})
        expect(batches == expected,
               "DeviceDataLoader should yield each batch (X, y) of the wrapped loader (the last one holds 2 "
               f"examples) moved to its device; the batches were on {', '.join(devices) or 'no device'} instead "
               "of the device it was given, or had other shapes. Use the tensors that to_device returns.")
    expect("train_error" not in out,
           f"A model trained on the batches of your DeviceDataLoader failed: {out.get('train_error')}.")
    grads = out["grads"]
    expect(all(isinstance(g, torch.Tensor) and g.device.type == "meta" for g in grads),
           "A model trained on the batches of your DeviceDataLoader got no gradients on the device of its "
           "parameters: yield the batches that to_device returns.")
