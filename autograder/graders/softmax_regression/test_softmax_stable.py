"""Checks of task `softmax_stable`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_apply
from .reference import (F32, F32_EXTREME, F64, check_backward, check_gradcheck, expect_result, extreme_logits,
                        _logits, _seed, single_class_logits, _unchanged)


def _check_softmax(student, O, what, tol):
    """softmax(O) against torch.softmax in float64; O unchanged; rows sum to 1."""
    out = student.probe(probe_apply, "softmax", O, label="`softmax`")
    P = expect_result(out, "`softmax`")
    expect(_unchanged(out["O_after"], O), f"softmax(O) modified O, the caller's logits, for {what}: compute the "
                                          f"shifted logits as a new tensor (O - shift), not in place.")
    expect_tensor(P, f"softmax(O) for {what}", shape=tuple(O.shape), dtype=O.dtype)
    expected = torch.softmax(O.double(), dim=1)
    expect(bool(torch.isfinite(P).all()),
           f"softmax(O) contains inf or NaN for {what}: shift each row by its maximum before exp.")
    sums = P.double().sum(dim=1)
    sum_tol = max(1e-5, 10 * tol["atol"])
    expect(bool(torch.allclose(sums, torch.ones_like(sums), atol=sum_tol, rtol=0)),
           f"The rows of softmax(O) should sum to 1 (within {sum_tol:g}) for {what}, but row sums range from "
           f"{sums.min().item():.4g} to {sums.max().item():.4g}: normalise each row (over the classes, dim=1).")
    expect_close(P, expected, f"softmax(O) for {what}", **tol)


@pytest.mark.softmax_stable
def test_softmax_odd_shape_float32(student):
    _check_softmax(student, _logits(37, 4, torch.float32, seed=_seed(1)), "float32 logits of shape (37, 4)", F32)


@pytest.mark.softmax_stable
def test_softmax_float64_and_square(student):
    _check_softmax(student, _logits(37, 4, torch.float64, seed=_seed(2)), "float64 logits of shape (37, 4)", F64)
    _check_softmax(student, _logits(5, 5, torch.float64, seed=_seed(3)), "float64 logits of shape (5, 5)", F64)


@pytest.mark.softmax_stable
def test_softmax_stability(student):
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32_EXTREME)):
        _check_softmax(student, extreme_logits(dtype),
                       f"{str(dtype).replace('torch.', '')} rows like [1000, 0, -1000] and all-equal rows", tol)
    _check_softmax(student, single_class_logits(torch.float64), "a single class (C = 1, shape (4, 1))", F64)


@pytest.mark.softmax_stable
def test_softmax_gradients(student):
    O = _logits(6, 4, torch.float64, seed=_seed(4))
    G = _logits(6, 4, torch.float64, seed=_seed(5), scale=1.0)
    check_backward(student, "softmax", O, "float64 logits of shape (6, 4)", G=G)
    check_gradcheck(student, "softmax", O)
    O = extreme_logits(torch.float64)
    check_backward(student, "softmax", O, "rows like [1000, 0, -1000] (float64)",
                    G=_logits(*O.shape, torch.float64, seed=_seed(6), scale=1.0))
