"""Checks of task `init_apply`."""
import math

import pytest
import torch

from autograder.judge.checks import expect, fail

from .probes import probe_init_apply
from .reference import _seed


@pytest.fixture(scope="module")
def init_others():
    """Values of the layers that are not nn.Linear (by module name), drawn by the judge away from the defaults."""
    gen = torch.Generator().manual_seed(_seed(17))
    return {"0.2": {"weight": 0.5 + torch.rand(400, generator=gen), "bias": torch.rand(400, generator=gen) - 0.5},
            "2": {"weight": torch.randn(8, 3, 5, 5, generator=gen) * 0.1, "bias": torch.randn(8, generator=gen)},
            "3": {"weight": 0.5 + torch.rand(1500, generator=gen), "bias": torch.rand(1500, generator=gen) - 0.5,
                  "running_mean": torch.randn(1500, generator=gen),
                  "running_var": 0.5 + torch.rand(1500, generator=gen), "num_batches_tracked": torch.tensor(7)}}


def _init_error(out):
    if "error" in out:
        fail(f"net.apply(init_weights) raised {out['error']}. apply calls init_weights on every module (ReLU, "
             "containers, normalisation layers, Linear layers without bias): act on nn.Linear only, and zero "
             "the bias only when it is not None.")


@pytest.fixture(scope="module")
def init_out(student, init_others):
    return student.probe(probe_init_apply, _seed(0), init_others, label="`init_weights`")


@pytest.mark.init_apply
def test_init_linear_weights(init_out):
    _init_error(init_out)
    for layer in init_out["linears"]:
        fan_in, fan_out = layer["fan_in"], layer["fan_out"]
        a = math.sqrt(6 / (fan_in + fan_out))
        what = f"nn.Linear({fan_in}, {fan_out}) (inside nested nn.Sequential) after net.apply(init_weights)"
        expect(-a * (1 + 1e-6) <= layer["min"] and layer["max"] <= a * (1 + 1e-6),
               f"The weights of {what} range from {layer['min']:.4g} to {layer['max']:.4g}; Xavier-uniform weights "
               f"lie in [-a, a] with a = sqrt(6 / (fan_in + fan_out)) = {a:.4g}: nn.init.xavier_uniform_(m.weight).")
        std = a / math.sqrt(3)
        expect(abs(layer["std"] - std) <= 0.03 * std and abs(layer["mean"]) <= 0.02 * a
               and layer["max"] >= 0.95 * a and layer["min"] <= -0.95 * a,
               f"The weights of {what} have standard deviation {layer['std']:.4g} and range "
               f"[{layer['min']:.4g}, {layer['max']:.4g}]; Xavier-uniform gives {std:.4g} (tolerance 3%) and fills "
               f"[-{a:.4g}, {a:.4g}]: nn.init.xavier_uniform_(m.weight).")


@pytest.mark.init_apply
def test_init_linear_biases(init_out):
    _init_error(init_out)
    for layer in init_out["linears"]:
        if layer["bias_max"] is not None:
            expect(layer["bias_max"] == 0,
                   f"The bias of nn.Linear({layer['fan_in']}, {layer['fan_out']}) after net.apply(init_weights) has "
                   f"entries up to {layer['bias_max']:.3g}; it should be all zeros: nn.init.zeros_(m.bias).")


@pytest.mark.init_apply
def test_init_leaves_other_modules(init_out, init_others):
    _init_error(init_out)
    after = init_out["others"]
    changed = [name for name, state in init_others.items()
               if set(after[name]) != set(state) or not all(torch.equal(after[name][k], v) for k, v in state.items())]
    expect(not changed, "net.apply(init_weights) changed the parameters of layers that are not nn.Linear "
           f"({len(changed)} of them: a Conv2d and normalisation layers). Initialise nn.Linear modules only: "
           "check isinstance(m, nn.Linear) (or type(m) == nn.Linear).")
