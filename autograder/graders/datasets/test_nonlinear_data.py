"""Checks of task `nonlinear_data`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_tensor

from .probes import probe_regression
from .reference import W, _seed


@pytest.mark.nonlinear_data
@pytest.mark.parametrize("power", [2, 3])
def test_nonlinear_targets(student, power):
    # Only the power relationship is judged here (noise 0, bias 0, any y shape with n entries):
    # shapes, noise and bias belong to regression_data.
    out = student.probe(probe_regression, W, 0.0, 200, 0.0, _seed(3), power=power, label="`make_regression`")
    X = expect_tensor(out["X"], f"X returned by make_regression(..., power={power})", shape=(200, 3))
    y = expect_tensor(out["y"], f"y returned by make_regression(..., power={power})")
    expect(y.numel() == 200, f"y returned by make_regression(..., power={power}) should have 200 entries, "
                             f"it has {y.numel()}.")
    signal = (X.double() ** power) @ torch.tensor(W, dtype=torch.float64)
    residual = y.double().reshape(-1) - signal
    ratio = residual.pow(2).mean().sqrt().item() / signal.std().item()
    expect(ratio <= 0.05,
           f"with power={power}, noise=0 and b=0, y should be (X ** {power}) @ w, but it differs from that by "
           f"{100 * ratio:.0f}% of its spread (tolerance 5%): is each feature raised to the power before "
           f"the product with w?")
