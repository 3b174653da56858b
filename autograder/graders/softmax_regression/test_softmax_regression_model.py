"""Checks of task `softmax_regression_model`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor, fail

from .probes import probe_init_params, probe_init_values, probe_model
from .reference import CREATE_A_LEAF, expect_gradient_lands, _seed


@pytest.mark.softmax_regression_model
def test_init_params(student):
    gen = torch.Generator().manual_seed(_seed(19))
    G_W, G_b = torch.randn(3, 4, generator=gen), torch.randn(4, generator=gen)
    out = student.probe(probe_init_params, 3, 4, G_W, G_b, label="`init_softmax_params`")
    if "error" in out:
        fail(f"init_softmax_params(3, 4) {out['error']}.")
    expect_tensor(out["W"], "W from init_softmax_params(3, 4)", shape=(3, 4), dtype=torch.float32, finite=True)
    expect_tensor(out["b"], "b from init_softmax_params(3, 4)", shape=(4,), dtype=torch.float32, finite=True)
    for key, G in (("W", G_W), ("b", G_b)):
        expect_gradient_lands(out[f"{key}_grad"], G,
                               f"{key} from init_softmax_params should be a leaf tensor that requires grad",
                               CREATE_A_LEAF)
    expect(out["O_shape"] == (5, 4), f"softmax_regression(X, W, b) with X of shape (5, 3) and your initial "
                                     f"parameters should return logits of shape (5, 4), got {out['O_shape']}.")


@pytest.mark.softmax_regression_model
def test_model_logits_and_gradients(student):
    gen = torch.Generator().manual_seed(_seed(13))
    X = torch.randn(37, 3, generator=gen)
    W = torch.randn(3, 4, generator=gen)
    b = torch.randn(4, generator=gen)
    G = torch.randn(37, 4, generator=gen)
    out = student.probe(probe_model, X, W, b, G, label="`softmax_regression`")
    O = out["O"]
    if isinstance(O, str):
        fail(f"softmax_regression(X, W, b) should return a tensor, but it returned {O}.")
    expect_tensor(O, "softmax_regression(X, W, b) for X (37, 3), W (3, 4), b (4,)", shape=(37, 4))
    expect_close(O, X.double() @ W.double() + b.double(),
                 "softmax_regression(X, W, b) (the logits X @ W + b, without softmax)", atol=1e-5, rtol=1e-5)
    expect(out["W_grad"] is not None and out["b_grad"] is not None,
           "After backward through softmax_regression, W.grad or b.grad is None: the logits must be "
           "computed from W and b with torch operations.")
    expect_close(out["W_grad"], X.double().T @ G.double(), "the gradient of the logits with respect to W",
                 atol=1e-4, rtol=1e-5)
    expect_close(out["b_grad"], G.double().sum(dim=0), "the gradient of the logits with respect to b",
                 atol=1e-4, rtol=1e-5)


@pytest.mark.softmax_regression_model
def test_init_params_values(student):
    out = student.probe(probe_init_values, 400, 10, label="`init_softmax_params`")
    if "error" in out:
        fail(f"init_softmax_params(400, 10) {out['error']}.")
    W = expect_tensor(out["W"], "W from init_softmax_params(400, 10)", shape=(400, 10), dtype=torch.float32,
                      finite=True).double()
    b = expect_tensor(out["b"], "b from init_softmax_params(400, 10)", shape=(10,), dtype=torch.float32)
    expect(bool((b == 0).all()), f"b from init_softmax_params should be zeros, but it is {b.tolist()}.")
    std, mean = W.std().item(), W.mean().item()
    # 4000 draws: the standard error of the std is 0.01 / 89, of the mean 0.01 / 63; both bands are 6+ of them.
    expect(0.009 <= std <= 0.011 and abs(mean) <= 0.001,
           f"The entries of W should be drawn from N(0, 0.01^2); over the 4000 entries of init_softmax_params(400, "
           f"10) their mean is {mean:.3g} and their standard deviation {std:.3g} (allowed: mean within 0.001 of 0, "
           f"standard deviation within 10% of 0.01).")
