"""Checks of task `sigmoid`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_elementwise
from .reference import EXTREMES, check_input_unchanged


@pytest.mark.sigmoid
def test_sigmoid_values_and_shape(student):
    z = torch.randn(37, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 4
    z[0, 0] = 0.0
    out = student.probe(probe_elementwise, "sigmoid", z, label="`sigmoid`")
    value = expect_tensor(out["value"], "sigmoid(z) for z of shape (37, 3), float64", shape=(37, 3),
                          dtype=torch.float64)
    expect_close(value, torch.sigmoid(z), "sigmoid(z) in float64", rtol=1e-10, atol=1e-12)
    check_input_unchanged(out, z, "sigmoid")
    expect(out["grad"] is not None, "sigmoid should be differentiable: use tensor operations on z only.")
    mask = z != 0   # at exactly 0, exp(-|z|) formulations have a valid but different subgradient
    s = torch.sigmoid(z)
    expect_close(out["grad"][mask], (s * (1 - s))[mask], "the gradient of sum(sigmoid(z)) in float64",
                 rtol=1e-8, atol=1e-12)


@pytest.mark.sigmoid
def test_sigmoid_extreme_inputs(student):
    z = torch.tensor(EXTREMES, dtype=torch.float32)
    out = student.probe(probe_elementwise, "sigmoid", z, label="`sigmoid`")
    value = expect_tensor(out["value"], "sigmoid(z) for float32 z", shape=(len(EXTREMES),), dtype=torch.float32)
    zs = ", ".join(f"{v:g}" for v in EXTREMES)
    expect(torch.isfinite(value).all(), f"sigmoid(z) is inf or NaN for some z in [{zs}] (float32).")
    expect_close(value, torch.sigmoid(z.double()), f"sigmoid(z) for z in [{zs}] (float32)", rtol=1e-5, atol=1e-7)
    check_input_unchanged(out, z, "sigmoid")
    grad = out["grad"]
    expect(grad is not None, "sigmoid should be differentiable: use tensor operations on z only.")
    expect(torch.isfinite(grad).all(),
           f"The gradient of sigmoid is inf or NaN at some z in [{zs}] (float32): exp overflows to inf, and "
           f"autograd multiplies inf by 0. Only ever exponentiate numbers <= 0.")
    s = torch.sigmoid(z.double())
    expect_close(grad, s * (1 - s), f"the gradient of sigmoid at z in [{zs}] (float32)", rtol=1e-4, atol=1e-7)
