"""The judge's side of datasets: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import os

import torch

from autograder.judge.checks import expect, expect_close, expect_tensor


W = [2.0, -3.4, 0.5]

B = 4.2


def grading_seed():
    """Seed of the graders' statistical checks (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base):
    """A seed for the student's function: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * grading_seed()


def check_regression(out, n, w, b, noise, power=1, what="make_regression"):
    X, y = out["X"], out["y"]
    d = len(w)
    expect_tensor(X, f"X returned by {what}", shape=(n, d), dtype=torch.float32, finite=True)
    expect_tensor(y, f"y returned by {what}", shape=(n, 1), dtype=torch.float32, finite=True)
    X64 = X.double()
    if n >= 1000:
        expect(0.85 <= X64.std().item() <= 1.15 and abs(X64.mean().item()) < 0.1,
               f"X should be drawn from a standard normal distribution N(0, 1): its mean is "
               f"{X64.mean().item():.3f} and its standard deviation {X64.std().item():.3f} "
               f"(expected mean within 0.1 of 0 and std within 15% of 1).")
    signal = (X64 ** power) @ torch.tensor(w, dtype=torch.float64) + b
    residual = y.double().reshape(-1) - signal
    if noise == 0:
        expect_close(y.double().reshape(-1), signal,
                     f"y from {what} with noise=0 (should equal X{'**' + str(power) if power > 1 else ''} @ w + b)",
                     rtol=1e-5, atol=1e-4)
        return
    mean_tol = 5 * noise / n ** 0.5
    expect(abs(residual.mean().item()) <= mean_tol + 1e-5,
           f"y - (X @ w + b) should be noise with mean 0, but its mean is {residual.mean().item():.4f} "
           f"(tolerance {mean_tol:.4f}): is the bias b added exactly once?")
    std = residual.std().item()
    expect(0.9 * noise <= std <= 1.1 * noise,
           f"With noise={noise:g}, y - (X @ w + b) should have standard deviation {noise:g}, "
           f"but it has {std:.4g} (tolerance 10%).")


def expect_same(first, second):
    """Two tuples of tensors are equal element by element (exactly, dtype included)."""
    return all(isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
               and a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second))

CENTERS = [[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [-5.0, 5.0, 2.0], [0.0, -6.0, -3.0]]


def batches_ok(runs, n, batch_size, shuffle, row_shape=(2,), label_shape=(), dtypes=(torch.float32, torch.int64)):
    """Every epoch: aligned (X, y) batches covering 0..n-1 once, in sizes batch_size..., dtypes kept."""
    per_row = 1
    for s in row_shape:
        per_row *= s
    for epoch, batches in enumerate(runs):
        expect(len(batches) > 0, "minibatches yielded no batches.")
        rows, labels, sizes = [], [], []
        for batch in batches:
            expect(len(batch) == 2, f"minibatches should yield pairs (X_batch, y_batch), got {len(batch)} items.")
            Xb, yb = batch
            expect_tensor(Xb, "X_batch", shape=(None, *row_shape))
            expect_tensor(yb, "y_batch", shape=(len(Xb), *label_shape))
            expect(Xb.dtype == dtypes[0] and yb.dtype == dtypes[1],
                   f"batches should keep the dtypes of X and y as given: for X in {dtypes[0]} and y in {dtypes[1]} "
                   f"they came back in {Xb.dtype} and {yb.dtype}.")
            rows.append(Xb)
            labels.append(yb.reshape(-1))
            sizes.append(len(Xb))
        X = torch.cat(rows).reshape(-1, per_row)
        y = torch.cat(labels)
        ids = (X[:, 0] / per_row).round().long()
        expect(torch.equal(y, ids * 10),
               "X_batch and y_batch are not aligned: row i of X_batch must belong with entry i of y_batch "
               "(shuffle both with the same permutation).")
        expected = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        expect(sizes == expected,
               f"with n={n} and batch_size={batch_size}, the batch sizes should be {expected} (the last, "
               f"smaller batch kept), but they are {sizes}.")
        expect(sorted(ids.tolist()) == list(range(n)),
               "every sample should appear exactly once per epoch, but some appear twice and some never "
               "(shuffling a tensor with random.shuffle duplicates rows: use torch.randperm).")
        if not shuffle:
            expect(ids.tolist() == list(range(n)), "with shuffle=False, samples should come in their original order.")
        elif epoch == 0:
            expect(ids.tolist() != list(range(n)), "with shuffle=True, samples should come in a random order.")
    return [torch.cat([b[1].reshape(-1) for b in batches]) for batches in runs]


def check_generator(runs, what):
    """runs: epochs shuffled by generators seeded s, s, s + 1 (torch's global state different each time)."""
    orders = batches_ok(runs, 29, 6, True, row_shape=(2, 2), label_shape=(1,))
    expect(torch.equal(orders[0], orders[1]),
           f"{what} with generator=torch.Generator().manual_seed(s), called twice, should give the same order "
           f"both times: shuffle with the generator you are given (torch.randperm(n, generator=generator)), "
           f"not with torch's global random state or Python's random module.")
    expect(not torch.equal(orders[0], orders[2]),
           f"{what} with generators of different seeds should give different orders.")

LATER = 1000     # what the probe adds to the dataset's values once split_loaders has returned

PAIR_CASES = {"features": (37, (3,), "labels", 5, torch.float32),
              "images": (23, (1, 4, 4), "targets", 4, torch.float32),
              "raw_images": (13, (1, 4, 4), "labels", 4, torch.uint8)}
