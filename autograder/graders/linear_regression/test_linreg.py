"""Checks of task `linreg`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_linreg


@pytest.mark.linreg
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linreg(student, dtype):
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(37, 3, generator=gen, dtype=dtype)
    w = torch.randn(3, 1, generator=gen, dtype=dtype)
    b = torch.randn(1, generator=gen, dtype=dtype)
    out = student.probe(probe_linreg, X, w, b, label="`linreg`")
    y_hat = expect_tensor(out["y_hat"], "linreg(X, w, b)", shape=(37, 1), dtype=dtype)
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    expect_close(y_hat, X.double() @ w.double() + b.double(), f"linreg(X, w, b) with X (37, 3) in {dtype}", **tol)
    expect(out["w_grad"] is not None and out["b_grad"] is not None,
           "linreg's output is not connected to both w and b: use tensor operations on them (no .detach(), "
           ".numpy() or .item()), so that autograd can compute their gradients.")
    expect_close(out["w_grad"], X.double().sum(dim=0, keepdim=True).T, "the gradient of sum(linreg(X, w, b)) "
                 "with respect to w", **tol)
    expect_close(out["b_grad"], torch.tensor([37.0], dtype=torch.float64),
                 "the gradient of sum(linreg(X, w, b)) with respect to b", **tol)


@pytest.mark.linreg
@pytest.mark.parametrize("n,d", [(1, 5), (64, 1)])
def test_linreg_other_shapes(student, n, d):
    gen = torch.Generator().manual_seed(30 + n)
    X = torch.randn(n, d, generator=gen)
    w = torch.randn(d, 1, generator=gen)
    b = torch.randn(1, generator=gen)
    out = student.probe(probe_linreg, X, w, b, label="`linreg`")
    what = f"linreg(X, w, b) with X ({n}, {d}), w ({d}, 1), b (1,)"
    y_hat = expect_tensor(out["y_hat"], what, shape=(n, 1), dtype=torch.float32)
    expect_close(y_hat, X.double() @ w.double() + b.double(), what, rtol=1e-5, atol=1e-5)
