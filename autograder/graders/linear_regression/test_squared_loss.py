"""Checks of task `squared_loss`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_squared_loss


@pytest.mark.squared_loss
@pytest.mark.parametrize("n", [37, 1])
@pytest.mark.parametrize("y_shape", ["(n, 1)", "(n,)"])
def test_squared_loss(student, y_shape, n):
    gen = torch.Generator().manual_seed(4)
    y_hat = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    sent = y if y_shape == "(n, 1)" else y.reshape(-1)
    out = student.probe(probe_squared_loss, y_hat, sent, label="`squared_loss`")
    what = f"squared_loss(y_hat, y) with y_hat ({n}, 1) and y {y_shape.replace('(n', f'({n}')}"
    expect_tensor(out["loss"], what, shape=(n, 1))
    expect_close(out["loss"], (y_hat - y) ** 2 / 2, what + " (one loss (y_hat - y)**2 / 2 per example)",
                 rtol=1e-10, atol=1e-12)
    after = out["y_after"]
    same_shape = tuple(after.shape) == tuple(sent.shape)
    changed = f"has shape {tuple(after.shape)} instead of {tuple(sent.shape)}" if not same_shape else "holds other values"
    expect(same_shape and torch.equal(after, sent),
           f"squared_loss should not change its argument y, but after the call y {changed}: make a new tensor "
           f"(y.reshape(...) into a new name, no in-place operation on y or on a view of it).")
    expect(out["grad"] is not None, "The loss should be differentiable with respect to y_hat (use tensor "
                                    "operations only).")
    expect_close(out["grad"], y_hat - y, "the gradient of the summed squared loss with respect to y_hat",
                 rtol=1e-10, atol=1e-12)
