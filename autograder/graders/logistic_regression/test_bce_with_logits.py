"""Checks of task `bce_with_logits`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_elementwise
from .reference import BCE_CASES, EXTREMES, check_input_unchanged


@pytest.mark.bce_with_logits
@pytest.mark.parametrize("labels", sorted(BCE_CASES))
def test_bce_values_shapes_gradients(student, labels):
    make_labels, z_dtype = BCE_CASES[labels]
    gen = torch.Generator().manual_seed(7)
    z = (torch.randn(37, 1, generator=gen, dtype=torch.float64) * 3).to(z_dtype)
    y = torch.randint(0, 2, (37,), generator=gen)
    sent = make_labels(y)
    out = student.probe(probe_elementwise, "bce_with_logits", z, sent, label="`bce_with_logits`")
    what = (f"bce_with_logits(z, y) with z (37, 1) {str(z_dtype).replace('torch.', '')} and y "
            f"{tuple(sent.shape)} {str(sent.dtype).replace('torch.', '')}")
    value = expect_tensor(out["value"], what + " (in the dtype of z)", shape=(37, 1), dtype=z_dtype)
    t = y.double().reshape(-1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.double(), t, reduction="none")
    tol = {"rtol": 1e-8, "atol": 1e-10} if z_dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    expect_close(value, expected, what + " (one loss per example)", **tol)
    check_input_unchanged(out, z, "bce_with_logits")
    expect(out["grad"] is not None, "The loss should be differentiable with respect to z (use tensor operations "
                                    "on z only).")
    expect_close(out["grad"], torch.sigmoid(z.double()) - t, "the gradient of the summed loss with respect to z "
                 "(should be sigmoid(z) - y)", **tol)


@pytest.mark.bce_with_logits
def test_bce_extreme_logits(student):
    z = torch.tensor(EXTREMES * 2, dtype=torch.float32).reshape(-1, 1)
    y = torch.tensor([0] * len(EXTREMES) + [1] * len(EXTREMES))
    out = student.probe(probe_elementwise, "bce_with_logits", z, y, label="`bce_with_logits`")
    zs = ", ".join(f"{v:g}" for v in EXTREMES)
    value = expect_tensor(out["value"], "bce_with_logits(z, y) for float32 logits", shape=(2 * len(EXTREMES), 1),
                          dtype=torch.float32)
    expect(torch.isfinite(value).all(),
           f"bce_with_logits is inf or NaN for some logits in [{zs}] with labels 0 and 1 (float32): "
           f"log(sigmoid(z)) underflows to log(0), and exp of a large number overflows. Use the form "
           f"max(z, 0) - z*y + log(1 + exp(-|z|)).")
    t = y.double().reshape(-1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.double(), t, reduction="none")
    expect_close(value, expected, f"bce_with_logits for logits in [{zs}] (float32)", rtol=1e-5, atol=1e-5)
    check_input_unchanged(out, z, "bce_with_logits")
    grad = out["grad"]
    expect(grad is not None, "The loss should be differentiable with respect to z (use tensor operations on z "
                             "only).")
    expect(torch.isfinite(grad).all(), f"The gradient of bce_with_logits is inf or NaN for some logits in "
                                       f"[{zs}] (float32).")
    expect_close(grad, torch.sigmoid(z.double()) - t, f"the gradient of bce_with_logits for logits in [{zs}] "
                 f"(float32)", rtol=1e-4, atol=1e-6)
