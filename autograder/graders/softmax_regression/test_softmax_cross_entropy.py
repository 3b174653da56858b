"""Checks of task `softmax_cross_entropy`."""
import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_apply
from .reference import (EXTREME_LABELS, F32_EXTREME, F64, check_backward, check_gradcheck, expect_result,
                        extreme_logits, _logits, _seed, single_class_logits, _unchanged)


def _check_cross_entropy(student, O, y, what, tol):
    out = student.probe(probe_apply, "cross_entropy", O, y, label="`cross_entropy`")
    loss = expect_result(out, "`cross_entropy`")
    expect(_unchanged(out["O_after"], O) and _unchanged(out["y_after"], y),
           f"cross_entropy(O, y) modified its inputs for {what}: compute shifted logits as a new tensor "
           f"(O - shift), not in place.")
    expect_tensor(loss, f"cross_entropy(O, y) for {what}")
    expect(loss.numel() == 1, f"cross_entropy(O, y) should return the mean loss over the batch, a single "
                              f"number, but for {what} it returned shape {tuple(loss.shape)}.")
    expect(loss.dim() == 0, f"cross_entropy(O, y) should return a 0-dimensional tensor (shape ()), but for {what} "
                            f"it returned shape {tuple(loss.shape)}: reduce with .mean() over all entries, or "
                            f"pick the true class with log_probs[torch.arange(N), y], which is (N,).")
    expect(loss.dtype == O.dtype, f"cross_entropy(O, y) should keep the dtype of O ({O.dtype}), "
                                  f"but it returned {loss.dtype} for {what}.")
    expect(bool(torch.isfinite(loss).all()),
           f"cross_entropy(O, y) is inf or NaN for {what}: compute it from the logits with log-sum-exp, "
           f"not as -log(softmax(O)).")
    expected = F.cross_entropy(O.double(), y)
    expect_close(loss.reshape(()), expected, f"cross_entropy(O, y) for {what}", **tol)


def _labels(n, c, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, c, (n,), generator=gen)


@pytest.mark.softmax_cross_entropy
def test_cross_entropy_odd_shape(student):
    _check_cross_entropy(student, _logits(37, 4, torch.float32, seed=_seed(7)), _labels(37, 4, seed=_seed(8)),
                         "float32 logits of shape (37, 4)", {"atol": 1e-5, "rtol": 1e-5})
    _check_cross_entropy(student, _logits(37, 4, torch.float64, seed=_seed(9)), _labels(37, 4, seed=_seed(10)),
                         "float64 logits of shape (37, 4)", F64)


@pytest.mark.softmax_cross_entropy
def test_cross_entropy_stability(student):
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32_EXTREME)):
        _check_cross_entropy(student, extreme_logits(dtype), EXTREME_LABELS,
                             f"{str(dtype).replace('torch.', '')} rows like [1000, 0, -1000] and all-equal rows",
                             tol)
    _check_cross_entropy(student, single_class_logits(torch.float64), torch.zeros(4, dtype=torch.int64),
                         "a single class (C = 1, shape (4, 1))", F64)


@pytest.mark.softmax_cross_entropy
def test_cross_entropy_gradients(student):
    O, y = _logits(6, 4, torch.float64, seed=_seed(11)), _labels(6, 4, seed=_seed(12))
    check_backward(student, "cross_entropy", O, "float64 logits of shape (6, 4)", y=y)
    check_gradcheck(student, "cross_entropy", O, y)
    check_backward(student, "cross_entropy", extreme_logits(torch.float64),
                    "rows like [1000, 0, -1000] (float64)", y=EXTREME_LABELS)
    check_backward(student, "cross_entropy", single_class_logits(torch.float64),
                    "a single class (C = 1, float64)", y=torch.zeros(4, dtype=torch.int64))
