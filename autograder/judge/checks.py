"""Checks for graders: each raises GradingFailure with a message meant for the student.

Every numerical check states its tolerance in its message. Comparisons run in float64 in the judging
process, whose torch the student's code never touched.
"""
import math

import torch

from autograder.sandbox.student import StudentFailure


class GradingFailure(StudentFailure):
    """A check failed; the message is shown to the student as is."""


def fail(message):
    """Fail the current grader with ``message``."""
    raise GradingFailure(message)


def expect(condition, message):
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise GradingFailure(message)


def _shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def expect_tensor(value, what, shape=None, dtype=None, finite=False):
    """Check that ``value`` is a tensor, optionally of ``shape`` (None entries match anything) and ``dtype``."""
    if not isinstance(value, torch.Tensor):
        fail(f"{what} should be a torch.Tensor, but it is a {type(value).__name__}.")
    if shape is not None:
        shape = tuple(shape)
        actual = tuple(value.shape)
        if len(actual) != len(shape) or any(e is not None and e != a for e, a in zip(shape, actual)):
            expected = _shape(tuple("*" if s is None else s for s in shape))
            fail(f"{what} should have shape {expected}, but it has shape {_shape(actual)}.")
    if dtype is not None and value.dtype != dtype:
        fail(f"{what} should have dtype {dtype}, but it has dtype {value.dtype}.")
    if finite and value.device.type != "meta" and value.is_floating_point() and not torch.isfinite(value).all():
        fail(f"{what} contains inf or NaN values.")
    return value


def expect_close(actual, expected, what, rtol=1e-5, atol=1e-6):
    """Check ``|actual - expected| <= atol + rtol * |expected|`` elementwise, compared in float64."""
    if isinstance(expected, (int, float)):
        expected = torch.tensor(float(expected), dtype=torch.float64)
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        actual = torch.tensor(float(actual), dtype=torch.float64)
    expect_tensor(actual, what)
    if actual.shape != expected.shape:
        if actual.numel() == expected.numel() == 1:
            actual = actual.reshape(expected.shape)
        else:
            fail(f"{what} should have shape {_shape(tuple(expected.shape))}, "
                 f"but it has shape {_shape(tuple(actual.shape))}.")
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    tolerance = f"(tolerance: atol={atol:g}, rtol={rtol:g})"
    if not torch.isfinite(a).all() and torch.isfinite(e).all():
        fail(f"{what} contains inf or NaN where finite values were expected {tolerance}.")
    bad = ~torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        diff = (a - e).abs()
        diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
        worst = diff.max().item()
        count = int(bad.sum())
        fail(f"{what} differs from the expected values in {count} of {a.numel()} entries "
             f"(largest difference {worst:.3g}) {tolerance}.")
    return actual


def expect_between(value, low, high, what):
    """Check ``low <= value <= high`` for a number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        fail(f"{what} should be a number, but it is {value!r}.")
    if not low <= value <= high:
        fail(f"{what} is {value:.4g}, expected between {low:g} and {high:g}.")
    return value
