"""Checks of task `custom_layer`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_custom_layer
from .reference import _seed


@pytest.fixture(scope="module")
def custom_layer_out(student):
    return student.probe(probe_custom_layer, _seed(0), label="`MyLinear`")


@pytest.mark.custom_layer
def test_custom_layer_parameters(custom_layer_out):
    out = custom_layer_out
    expect("error" not in out, "MyLinear(5, 3) should be an nn.Module (subclass nn.Module and call "
           f"super().__init__()): calling its named_parameters() and state_dict() raised {out.get('error')}.")
    attr = out["attr"]
    for name in ("weight", "bias"):
        expect(attr[name] is not None, f"MyLinear(5, 3) has no attribute `{name}`.")
        expect(name in out["names"],
               f"MyLinear's `{name}` is a plain {'tensor' if isinstance(attr[name], torch.Tensor) else attr[name]}, "
               "not an nn.Parameter: it is not registered, so it is missing from parameters() (the optimiser never "
               f"updates it), from state_dict() and from .to(device). Wrap it: self.{name} = nn.Parameter(...).")
    expect(out["names"] == ["bias", "weight"],
           f"MyLinear(5, 3) should register exactly the parameters weight and bias; named_parameters() gives "
           f"{', '.join(out['names']) or 'none'}.")
    expect(out["state_keys"] == ["bias", "weight"],
           f"MyLinear(5, 3).state_dict() should hold weight and bias; it holds {', '.join(out['state_keys']) or 'nothing'}.")
    expect(out["shapes"] == {"weight": (5, 3), "bias": (3,)},
           f"MyLinear(5, 3) should have weight of shape (5, 3) (in_features, out_features) and bias of shape (3,); "
           f"they are {out['shapes'].get('weight')} and {out['shapes'].get('bias')}.")
    moved = out["moved"]
    expect(sorted(moved) == ["bias", "weight"] and all(v.device.type == "meta" for v in moved.values()),
           "MyLinear(5, 3).to(device) should move weight and bias to the device.")
    expect(out["sequential_params"] == 4 * 8 + 8 + 8 * 2 + 2 and out["sequential_shape"] == (3, 2),
           "nn.Sequential(MyLinear(4, 8), nn.ReLU(), MyLinear(8, 2)) should have 58 parameters and map (3, 4) to "
           f"(3, 2); it has {out['sequential_params']} and gives {out['sequential_shape']}.")


@pytest.mark.custom_layer
def test_custom_layer_forward(custom_layer_out):
    out = custom_layer_out
    expect("cases" in out, "MyLinear needs the parameters weight and bias (see the other message).")
    for case in out["cases"]:
        n, fan_in = case["X"].shape
        fan_out = case["R"].shape[1]
        what = f"MyLinear({fan_in}, {fan_out}) applied to X of shape ({n}, {fan_in})"
        expect(tuple(case["W"].shape) == (fan_in, fan_out) and tuple(case["b"].shape) == (fan_out,),
               f"MyLinear({fan_in}, {fan_out}) should have weight of shape ({fan_in}, {fan_out}) (in_features, "
               f"out_features), so that forward computes X @ weight + bias, and bias of shape ({fan_out},); they "
               f"have shapes {tuple(case['W'].shape)} and {tuple(case['b'].shape)}.")
        y_hat = expect_tensor(case["y_hat"], what, shape=(n, fan_out), dtype=torch.float32)
        X, W, b = case["X"].double(), case["W"].double(), case["b"].double()
        expect_close(y_hat, X @ W + b, f"{what} (X @ weight + bias)", rtol=1e-5, atol=1e-5)
        expect("backward_error" not in case and case["W_grad"] is not None and case["b_grad"] is not None,
               f"No gradient reaches weight and bias through the output of {what}"
               f"{' (backward raised ' + case['backward_error'] + ')' if 'backward_error' in case else ''}: "
               "it is cut off from them, so training cannot change them. Use self.weight and self.bias themselves "
               "in forward (not self.weight.data or a detached copy).")
        for name, grad, want in (("weight", case["W_grad"], X.T @ case["R"].double()),
                                 ("bias", case["b_grad"], case["R"].double().sum(0))):
            expect_close(grad, want, f"the gradient of {name} after backward through {what}", rtol=1e-5, atol=1e-5)


@pytest.mark.custom_layer
def test_custom_layer_initialisation(custom_layer_out):
    out = custom_layer_out
    expect("init" in out, "MyLinear needs the parameters weight and bias (see the other message).")
    init = out["init"]
    expect(init["shape"] == (1000, 400), f"MyLinear(1000, 400).weight should have shape (1000, 400), not {init['shape']}.")
    expect(abs(init["std"] - 0.01) <= 0.0005 and abs(init["mean"]) <= 0.0002,
           f"MyLinear(1000, 400).weight has mean {init['mean']:.3g} and standard deviation {init['std']:.3g}; "
           "weights drawn from N(0, 0.01^2) have mean 0 (tolerance 2e-4) and standard deviation 0.01 (tolerance "
           "5e-4): torch.randn(in_features, out_features) * 0.01.")
    expect(0.035 <= init["beyond_2std"] <= 0.056,
           f"{init['beyond_2std']:.1%} of MyLinear(1000, 400)'s weights are beyond 2 standard deviations; a normal "
           "distribution puts 4.6% there (accepted 3.5%-5.6%): draw them with torch.randn.")
    expect(init["bias_max"] == 0, f"MyLinear's bias should start at zero; its largest entry is {init['bias_max']:.3g}.")
