"""Checks of task `init_linreg_params`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor
from autograder.judge.training import kind

from .probes import probe_init, probe_init_sigma


@pytest.mark.init_linreg_params
@pytest.mark.parametrize("d", [3, 7])
def test_init_params(student, d):
    gen = torch.Generator().manual_seed(20 + d)
    X = torch.randn(5, d, generator=gen)
    c = torch.rand(5, 1, generator=gen) + 0.5
    out = student.probe(probe_init, d, X, c, label="`init_linreg_params`")
    first = out["first"]
    expect(isinstance(first, (tuple, list)) and len(first) == 2,
           f"init_linreg_params should return a tuple (w, b), not {kind(first)}.")
    expect("grads" in out, "Every call of init_linreg_params should return a tuple (w, b).")
    for name, value, shape in (("w", first[0], (d, 1)), ("b", first[1], (1,))):
        expect_tensor(value, f"{name} from init_linreg_params({d})", shape=shape, dtype=torch.float32, finite=True)
    w_grad, b_grad, second_w_grad, second_b_grad = out["grads"]
    for name, grad in (("w", w_grad), ("b", b_grad)):
        expect(grad is not None,
               f"After a loss's backward(), {name}.grad is still None: {name} should be a leaf tensor with "
               f"requires_grad=True, or autograd does not fill its gradient. Ask for gradients when you create it, "
               f"and create the values first: a tensor computed from one that requires grad (e.g. "
               f"torch.randn(..., requires_grad=True) * sigma) is not a leaf.")
    expect_close(w_grad, X.double().T @ c.double(), f"the gradient that a loss's backward() leaves in w.grad "
                 f"(w from init_linreg_params({d}))", rtol=1e-5, atol=1e-5)
    expect_close(b_grad, c.double().sum().reshape(1), f"the gradient that a loss's backward() leaves in b.grad "
                 f"(b from init_linreg_params({d}))", rtol=1e-5, atol=1e-5)
    biggest = first[0].abs().max().item()
    expect(biggest <= 1.0, f"w should start small (the instructions use N(0, 0.01^2)); its largest entry "
                           f"is {biggest:.3g} (allowed: at most 1 in absolute value).")
    expect(all(g is None or not g.any() for g in (second_w_grad, second_b_grad)),
           "Each call of init_linreg_params should create new tensors, not return the same ones again.")


@pytest.mark.init_linreg_params
@pytest.mark.parametrize("sigma", [None, 0.5])
def test_init_uses_sigma(student, sigma):
    d = 4000
    call = f"init_linreg_params({d})" if sigma is None else f"init_linreg_params({d}, sigma={sigma})"
    out = student.probe(probe_init_sigma, d, sigma, label="`init_linreg_params`")
    expect(isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out),
           f"{call} returned {kind(out)}, not a tuple of two tensors (w, b).")
    w = expect_tensor(out[0], f"w from {call}", shape=(d, 1), dtype=torch.float32, finite=True).double()
    b = expect_tensor(out[1], f"b from {call}", shape=(1,), dtype=torch.float32)
    expect(bool((b == 0).all()), f"b from {call} should be zeros, but it is {b.tolist()}.")
    target = 0.01 if sigma is None else sigma
    std, mean = w.std().item(), w.mean().item()
    # 4000 draws: the standard error of the std is sigma / 89, of the mean sigma / 63; both bands are 6+ of them.
    expect(0.9 * target <= std <= 1.1 * target and abs(mean) <= 0.1 * target,
           f"The entries of w from {call} should be drawn from N(0, sigma^2) with sigma = {target:g}; over {d} "
           f"entries their mean is {mean:.3g} and their standard deviation {std:.3g} (allowed: mean within "
           f"{0.1 * target:g} of 0, standard deviation within 10% of {target:g}). Use the argument sigma.")
