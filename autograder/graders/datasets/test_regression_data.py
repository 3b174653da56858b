"""Checks of task `regression_data`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_tensor

from .probes import probe_regression, probe_regression_seeds
from .reference import B, W, check_regression, expect_same, _seed


@pytest.mark.regression_data
def test_regression_shapes_and_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.5, _seed(0), label="`make_regression`")
    check_regression(out, 4000, W, B, 0.5)


@pytest.mark.regression_data
def test_regression_exact_without_noise(student):
    out = student.probe(probe_regression, W, B, 37, 0.0, _seed(1), label="`make_regression`")
    check_regression(out, 37, W, B, 0.0)


@pytest.mark.regression_data
def test_regression_one_feature(student):
    out = student.probe(probe_regression, [1.5], -0.5, 20, 0.0, _seed(4), label="`make_regression`")
    check_regression(out, 20, [1.5], -0.5, 0.0, what="make_regression with a single feature (w of shape (1,))")


@pytest.mark.regression_data
def test_regression_small_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.01, _seed(2), label="`make_regression`")
    check_regression(out, 4000, W, B, 0.01)


@pytest.mark.regression_data
def test_regression_seed(student):
    other = _seed(8)
    runs = student.probe(probe_regression_seeds, W, B, 50, [0, 0, 1, other, other], label="`make_regression`")
    for name, i, j in (("seed=0", 0, 1), (f"seed={other}", 3, 4)):
        for k, part in enumerate(("X", "y")):
            expect_tensor(runs[i][k], f"{part} returned by make_regression")
        expect(expect_same(runs[i], runs[j]),
               f"make_regression called twice with {name} should return the same X and y both times "
               f"(seed 0 is a seed like any other: test `seed is None`, not `if seed:`).")
    expect(not torch.equal(runs[0][0], runs[2][0]) and not torch.equal(runs[2][0], runs[3][0]),
           "make_regression with different seeds should return different X.")
