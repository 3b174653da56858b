"""Checks of task `save_load_params`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor, fail

from .probes import probe_save_load
from .reference import SAVE_LOAD_FILES, SAVE_LOAD_SHIFT, _seed


@pytest.fixture(scope="module")
def save_load_case():
    """The judge's two networks (their state_dicts: the MLP's batch-norm statistics moved away from the defaults)
    and the input X."""
    gen = torch.Generator().manual_seed(_seed(13))
    X = torch.randn(7, 6, generator=gen)
    states = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(0))
        mlp = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                  torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
        with torch.no_grad():
            for _ in range(3):
                mlp(X * 2 + 1)
        small = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    for name, net in (("mlp", mlp), ("small", small)):
        net.eval()
        with torch.no_grad():
            expected = net(X)
        states[name] = {"state": {k: v.detach().clone() for k, v in net.state_dict().items()}, "expected": expected}
    return {"X": X, "states": states}


def _read_state(content):
    """The file's bytes read here with torch.load (tensors only): the object, or the error it raised."""
    import io
    try:
        return torch.load(io.BytesIO(content.numpy().tobytes()), weights_only=True, map_location="cpu"), None
    except Exception as exc:
        return None, type(exc).__name__


@pytest.fixture(scope="module")
def save_load_out(student, save_load_case):
    case = save_load_case
    return student.probe(probe_save_load, {k: v["state"] for k, v in case["states"].items()}, case["X"],
                         SAVE_LOAD_SHIFT, _seed(1), label="`save_params` / `load_params`")


@pytest.mark.save_load_params
def test_save_params_writes_state_dict(save_load_out, save_load_case):
    for name, case in save_load_out.items():
        state = save_load_case["states"][name]["state"]
        filename = SAVE_LOAD_FILES[name]
        expect(filename in case["files"],
               "save_params(net, path) wrote no file at path: torch.save(net.state_dict(), path).")
        saved, error = _read_state(case["files"][filename])
        expect(error is None, "The file written by save_params could not be read as a state_dict with torch.load "
               f"(it raised {error}): save net.state_dict(), a dict of tensors, not the network object.")
        keys = sorted(saved) if isinstance(saved, dict) else None
        same = keys == sorted(state) and all(
            isinstance(saved[k], torch.Tensor) and saved[k].shape == v.shape and torch.equal(saved[k], v)
            for k, v in state.items())
        expect(same,
               "The file written by save_params should hold net.state_dict(): a dict with the keys "
               f"{', '.join(sorted(state))} and the network's current tensors; it holds "
               f"{'the keys ' + ', '.join(str(k) for k in keys) if keys is not None else 'a ' + type(saved).__name__}"
               " (or other values).")


@pytest.mark.save_load_params
def test_load_params_reproduces(save_load_out, save_load_case):
    for name, case in save_load_out.items():
        expected = save_load_case["states"][name]["expected"]
        expect("load_error" not in case, f"load_params(make_net, path) raised {case.get('load_error')}. Build the "
               "network with the make_net it is given, then net.load_state_dict(torch.load(path)) with the "
               "state_dict that save_params wrote.")
        expect("pred_error" not in case, f"load_params(make_net, path) should return the network (an nn.Module); "
               f"it returned a {case.get('loaded_type')}, and calling it raised {case.get('pred_error')}.")
        original = expect_tensor(case["original"], "the saved network's output", shape=tuple(expected.shape))
        expect_close(original, expected, "the output of the network given to save_params (save_params should "
                     "leave it as it is)", rtol=1e-5, atol=1e-6)
        pred = expect_tensor(case["pred"], "the loaded network's output", shape=tuple(expected.shape))
        again = case["pred_again"]
        if not torch.equal(pred, original):
            if not (isinstance(again, torch.Tensor) and torch.equal(again, pred)):
                fail("The network returned by load_params is in training mode, so dropout and batch norm change "
                     "its predictions: call net.eval() before returning it.")
            fail("The network returned by load_params does not reproduce the saved network's predictions exactly "
                 "(compared with torch.equal): build it with the make_net it is given, then "
                 "net.load_state_dict(torch.load(path)).")
        expect(isinstance(again, torch.Tensor) and torch.equal(again, pred),
               "The network returned by load_params gives different predictions for the same input: return it in "
               "evaluation mode (net.eval()).")
        after = case["pred_after_shift"]
        expect(isinstance(after, torch.Tensor) and torch.equal(after, pred),
               "The network returned by load_params changes when the network that was saved is changed: it is that "
               "same object, not a new network. Build a new one with make_net(), then load the saved state_dict "
               "into it.")
