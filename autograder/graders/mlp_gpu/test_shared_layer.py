"""Checks of task `shared_layer`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_shared_layer
from .reference import SHARED_SIZES, _seed


@pytest.fixture(scope="module")
def shared_out(student):
    return [student.probe(probe_shared_layer, _seed(0), sizes, label="`make_shared_net`") for sizes in SHARED_SIZES]


@pytest.mark.shared_layer
def test_shared_net_structure(shared_out):
    for out, (i, h, o, _) in zip(shared_out, SHARED_SIZES):
        call = f"make_shared_net({i}, {h}, {o})"
        expect("error" not in out, f"{call} should return an nn.Module (e.g. an nn.Sequential); it returned a "
               f"{out.get('type')}, whose parameters() and modules() raised {out.get('error')}.")
        expected = i * h + h + h * h + h + h * o + o
        expect(out["n_params"] == expected and out["n_tensors"] == 6,
               f"{call} has {out['n_params']} parameters in {out['n_tensors']} tensors; Linear({i}, {h}), one shared "
               f"Linear({h}, {h}) used twice and Linear({h}, {o}) have {expected} in 6 tensors: the shared layer's "
               "parameters count once. Create the shared layer once and put that same object in the network twice "
               "(a copy, or a second nn.Linear with the same values, is a different layer).")
        calls, linears = out["calls"], out["linears"]
        uses = [(linears[c]["weight"], linears[c]["bias"]) for c in calls]
        expect(len(calls) == 4 and uses[1] == uses[2] and len(set(uses)) == 3,
               f"In {call}'s forward, nn.Linear layers ran {len(calls)} times with {len(set(uses))} different sets "
               "of parameters; expected 4 runs: the first layer, the shared layer twice, the output layer.")


@pytest.mark.shared_layer
def test_shared_net_forward_and_gradients(shared_out):
    for out, (i, h, o, n) in zip(shared_out, SHARED_SIZES):
        call = f"make_shared_net({i}, {h}, {o})"
        expect("error" not in out and len(out["calls"]) == 4,
               f"{call} should run 4 linear layers (see the other message).")
        y_hat = expect_tensor(out["y_hat"], f"{call} applied to X of shape ({n}, {i})", shape=(n, o))
        values = [v.double().clone().requires_grad_(True) for v in out["values"]]
        h_ = out["X"].double()
        for step, c in enumerate(out["calls"]):
            layer = out["linears"][c]
            expect(layer["weight"] is not None and layer["bias"] is not None,
                   f"Every linear layer of {call} should have a registered weight and bias.")
            W, b = values[layer["weight"]], values[layer["bias"]]
            expect(W.shape[1] == h_.shape[1] and b.shape == (W.shape[0],),
                   f"The linear layers of {call} do not fit together: layer {step + 1} has weight of shape "
                   f"{tuple(W.shape)} for inputs of {h_.shape[1]} features. Use Linear({i}, {h}), the shared "
                   f"Linear({h}, {h}) twice, then Linear({h}, {o}).")
            h_ = h_ @ W.T + b
            if step < 3:
                h_ = torch.relu(h_)
        expect_close(y_hat, h_.detach(), f"the output of {call} (Linear, ReLU, shared, ReLU, shared, ReLU, Linear)",
                     rtol=1e-5, atol=1e-5)
        (h_ * out["R"].double()).sum().backward()
        for k, (got, value) in enumerate(zip(out["grads"], values)):
            expect(got is not None, f"After backward through {call}, a parameter has no gradient.")
            expect_close(got, value.grad, f"the gradients of {call}'s parameters (the shared layer's is the sum "
                         "over both of its uses)", rtol=1e-4, atol=1e-5)
