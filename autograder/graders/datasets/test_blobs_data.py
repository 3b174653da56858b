"""Checks of task `blobs_data`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor

from .probes import probe_blobs, probe_blobs_seeds
from .reference import CENTERS, expect_same, _seed


@pytest.mark.blobs_data
def test_blobs_shapes_and_labels(student):
    out = student.probe(probe_blobs, 37, CENTERS, 1.0, _seed(0), label="`make_blobs`")
    expect_tensor(out["X"], "X returned by make_blobs", shape=(4 * 37, 3), dtype=torch.float32, finite=True)
    y = expect_tensor(out["y"], "y returned by make_blobs", shape=(4 * 37,))
    expect(y.dtype == torch.int64, f"y should hold class indices as int64 (what cross-entropy needs), "
                                   f"but its dtype is {y.dtype}.")
    counts = torch.bincount(y.clamp(min=0), minlength=4)
    expect(y.min().item() >= 0 and y.max().item() <= 3 and counts.tolist() == [37] * 4,
           f"y should contain each class 0..3 exactly 37 times, but the counts are {counts.tolist()}.")


@pytest.mark.blobs_data
@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_blobs_centres_and_spread(student, spread):
    n = 2000
    out = student.probe(probe_blobs, n, CENTERS, spread, _seed(1), label="`make_blobs`")
    X = expect_tensor(out["X"], "X returned by make_blobs", shape=(4 * n, 3), finite=True).double()
    y = expect_tensor(out["y"], "y returned by make_blobs", shape=(4 * n,))
    for c, centre in enumerate(CENTERS):
        points = X[y == c]
        expect(len(points) == n, f"class {c} should have {n} points, but it has {len(points)}.")
        mean_tol = 5 * spread / n ** 0.5
        expect_close(points.mean(0), torch.tensor(centre, dtype=torch.float64),
                     f"the mean of the points of class {c}", rtol=0, atol=mean_tol)
        std = points.std(0)
        expect(((std - spread).abs() <= 0.1 * spread).all(),
               f"with spread={spread:g}, the points of class {c} should have standard deviation {spread:g} "
               f"around their centre in every feature, but they have {[round(s, 3) for s in std.tolist()]} "
               f"(tolerance 10%).")


@pytest.mark.blobs_data
def test_blobs_seed(student):
    centers = [[0.0, 0.0], [3.0, -3.0]]
    other = _seed(5)
    runs = student.probe(probe_blobs_seeds, 20, centers, [0, 0, 1, other, other], label="`make_blobs`")
    for k, part in enumerate(("X", "y")):
        expect_tensor(runs[0][k], f"{part} returned by make_blobs with 2 centres in 2-D",
                      shape=(40, 2) if part == "X" else (40,),
                      dtype=torch.float32 if part == "X" else torch.int64)
    for name, i, j in (("seed=0", 0, 1), (f"seed={other}", 3, 4)):
        expect(expect_same(runs[i], runs[j]),
               f"make_blobs called twice with {name} should return the same X and y both times "
               f"(seed 0 is a seed like any other: test `seed is None`, not `if seed:`).")
    expect(not torch.equal(runs[0][0], runs[2][0]) and not torch.equal(runs[2][0], runs[3][0]),
           "make_blobs with different seeds should return different X.")
