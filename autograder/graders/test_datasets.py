"""Graders for 01-datasets: regression data, blobs, mini-batches, splits, a Dataset, a reusable module.

Statistical checks use sample sizes large enough that a correct solution passes for any seed:
with n samples of N(0, s^2), the sample mean lies within 5 s / sqrt(n) and the sample standard deviation
within 10% of s (n >= 2000) except with probability far below 1e-6.
"""
import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task

ASSIGNMENT = "01-datasets"
TASKS = [
    Task("regression_data", 2, "Regression data y = Xw + b + noise"),
    Task("nonlinear_data", 1, "Squared and cubed regression targets"),
    Task("blobs_data", 2, "Gaussian blobs for classification"),
    Task("minibatches", 2, "Shuffled mini-batches, every sample once per epoch"),
    Task("split_indices", 2, "Train / validation index split"),
    Task("split_loaders", 1, "DataLoaders over the split with SubsetRandomSampler"),
    Task("pair_dataset", 2, "A map-style Dataset used through DataLoader"),
    Task("reusable_module", 1, "The functions saved as an importable module"),
]

W = [2.0, -3.4, 0.5]
B = 4.2


# ------------------------------------------------------------------------------------------ probes
def probe_regression(ns, w, b, n, noise, seed, power=None, module=None):
    import torch
    if module:
        import importlib
        import sys
        sys.path.insert(0, ".")
        importlib.invalidate_caches()
        make_regression = importlib.import_module(module).make_regression
    else:
        make_regression = ns.require("make_regression")
    kwargs = {"noise": noise, "seed": seed}
    if power is not None:
        kwargs["power"] = power
    X, y = make_regression(torch.tensor(w), b, n, **kwargs)
    return {"X": X, "y": y}


def probe_regression_seeds(ns, w, b, n):
    import torch
    make_regression = ns.require("make_regression")
    first = make_regression(torch.tensor(w), b, n, noise=0.1, seed=7)
    again = make_regression(torch.tensor(w), b, n, noise=0.1, seed=7)
    other = make_regression(torch.tensor(w), b, n, noise=0.1, seed=8)
    return {"first": tuple(first), "again": tuple(again), "other": tuple(other)}


def probe_blobs(ns, n_per_class, centers, spread, seed):
    import torch
    X, y = ns.require("make_blobs")(n_per_class, torch.tensor(centers), spread=spread, seed=seed)
    return {"X": X, "y": y}


def probe_minibatches(ns, n, batch_size, shuffle, epochs=1):
    import torch
    minibatches = ns.require("minibatches")
    X = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    y = torch.arange(n) * 10
    runs = []
    for _ in range(epochs):
        batches = []
        for batch in minibatches(X, y, batch_size, shuffle=shuffle):
            batches.append(tuple(batch))
        runs.append(batches)
    return runs


def probe_split_indices(ns, n, val_frac, seed):
    import torch
    train_idx, val_idx = ns.require("split_indices")(n, val_frac, seed=seed)
    return {"train": torch.as_tensor(train_idx).reshape(-1), "val": torch.as_tensor(val_idx).reshape(-1)}


def probe_split_loaders(ns, n, batch_size, val_frac, seed):
    import torch
    from torch.utils.data import TensorDataset
    dataset = TensorDataset(torch.arange(n), torch.arange(n) * 10)
    split_loaders = ns.require("split_loaders")

    def split_indices(n, val_frac, seed=None):
        # a correct split, so that this task is judged on its own (split_indices is graded separately)
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        perm = torch.randperm(n, generator=gen)
        return perm[int(n * val_frac):], perm[:int(n * val_frac)]

    saved = ns.globals.get("split_indices")
    ns.globals["split_indices"] = split_indices
    try:
        train_loader, valid_loader = split_loaders(dataset, batch_size, val_frac, seed=seed)
    finally:
        if saved is None:
            ns.globals.pop("split_indices", None)
        else:
            ns.globals["split_indices"] = saved
    out = {}
    for name, loader in (("train", train_loader), ("valid", valid_loader)):
        epochs = []
        for _ in range(2):
            batches = [tuple(batch) for batch in loader]
            epochs.append(batches)
        out[name] = epochs
        out[name + "_type"] = type(loader).__name__
        out[name + "_sampler"] = type(getattr(loader, "sampler", None)).__name__
    return out


def probe_pair_dataset(ns, n, d, batch_size):
    import torch
    from torch.utils.data import DataLoader, Dataset
    cls = ns.require("PairDataset", kind="class")
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(3))
    y = torch.arange(n)
    dataset = cls(X, y)
    items = [tuple(dataset[i]) for i in (0, n // 2, n - 1)]
    loaded = [tuple(batch) for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)]
    return {"is_dataset": isinstance(dataset, Dataset), "len": len(dataset), "items": items,
            "loaded": loaded, "X": X, "y": y}


# ------------------------------------------------------------------------------------------ helpers
def _check_regression(out, n, d, noise, power=1, what="make_regression"):
    X, y = out["X"], out["y"]
    expect_tensor(X, f"X returned by {what}", shape=(n, d), dtype=torch.float32, finite=True)
    expect_tensor(y, f"y returned by {what}", shape=(n, 1), dtype=torch.float32, finite=True)
    X64 = X.double()
    expect(0.85 <= X64.std().item() <= 1.15 and abs(X64.mean().item()) < 0.1,
           f"X should be drawn from a standard normal distribution N(0, 1): its mean is "
           f"{X64.mean().item():.3f} and its standard deviation {X64.std().item():.3f} "
           f"(expected mean within 0.1 of 0 and std within 15% of 1).")
    signal = (X64 ** power) @ torch.tensor(W, dtype=torch.float64) + B
    residual = y.double().reshape(-1) - signal
    if noise == 0:
        expect_close(y.double().reshape(-1), signal, f"y with noise=0 (should equal X{'**' + str(power) if power > 1 else ''} @ w + b)",
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


# ------------------------------------------------------------------------------------------ graders
@pytest.mark.regression_data
def test_regression_shapes_and_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.5, 0, label="`make_regression`")
    _check_regression(out, 4000, 3, 0.5)


@pytest.mark.regression_data
def test_regression_exact_without_noise(student):
    out = student.probe(probe_regression, W, B, 37, 0.0, 1, label="`make_regression`")
    _check_regression(out, 37, 3, 0.0)


@pytest.mark.regression_data
def test_regression_small_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.01, 2, label="`make_regression`")
    _check_regression(out, 4000, 3, 0.01)


@pytest.mark.regression_data
def test_regression_seed(student):
    out = student.probe(probe_regression_seeds, W, B, 50, label="`make_regression`")
    for i, name in enumerate(("X", "y")):
        expect_tensor(out["first"][i], f"{name} returned by make_regression")
        expect(torch.equal(out["first"][i], out["again"][i]),
               f"make_regression with the same seed should return the same {name} twice.")
    expect(not torch.equal(out["first"][0], out["other"][0]),
           "make_regression with different seeds should return different X.")


@pytest.mark.nonlinear_data
@pytest.mark.parametrize("power", [2, 3])
def test_nonlinear_targets(student, power):
    # Only the power relationship is judged here (noise 0, bias 0, any y shape with n entries):
    # shapes, noise and bias belong to regression_data.
    out = student.probe(probe_regression, W, 0.0, 200, 0.0, 3, power=power, label="`make_regression`")
    X = expect_tensor(out["X"], f"X returned by make_regression(..., power={power})", shape=(200, 3))
    y = expect_tensor(out["y"], f"y returned by make_regression(..., power={power})")
    expect(y.numel() == 200, f"y returned by make_regression(..., power={power}) should have 200 entries, "
                             f"it has {y.numel()}.")
    signal = (X.double() ** power) @ torch.tensor(W, dtype=torch.float64)
    residual = y.double().reshape(-1) - signal
    ratio = residual.pow(2).mean().sqrt().item() / signal.std().item()
    expect(ratio <= 0.05,
           f"with power={power}, noise=0 and b=0, y should be (X ** {power}) @ w, but it differs from that by "
           f"{100 * ratio:.0f}% of its spread (tolerance 5%): is each feature raised to the power?")


CENTERS = [[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [-5.0, 5.0, 2.0], [0.0, -6.0, -3.0]]


@pytest.mark.blobs_data
def test_blobs_shapes_and_labels(student):
    out = student.probe(probe_blobs, 37, CENTERS, 1.0, 0, label="`make_blobs`")
    X = expect_tensor(out["X"], "X returned by make_blobs", shape=(4 * 37, 3), dtype=torch.float32, finite=True)
    y = expect_tensor(out["y"], "y returned by make_blobs", shape=(4 * 37,))
    expect(y.dtype == torch.int64, f"y should hold class indices as int64 (what cross-entropy needs), "
                                   f"but its dtype is {y.dtype}.")
    counts = torch.bincount(y.clamp(min=0), minlength=4)
    expect(y.min().item() >= 0 and y.max().item() <= 3 and counts.tolist() == [37] * 4,
           f"y should contain each class 0..3 exactly 37 times, but the counts are {counts.tolist()}.")
    del X


@pytest.mark.blobs_data
@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_blobs_centres_and_spread(student, spread):
    n = 2000
    out = student.probe(probe_blobs, n, CENTERS, spread, 1, label="`make_blobs`")
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


def _batches_ok(runs, n, batch_size, shuffle):
    for epoch, batches in enumerate(runs):
        expect(len(batches) > 0, "minibatches yielded no batches.")
        rows, labels, sizes = [], [], []
        for Xb, yb in batches:
            expect_tensor(Xb, "X_batch", shape=(None, 2))
            expect_tensor(yb, "y_batch", shape=(len(Xb),))
            rows.append(Xb)
            labels.append(yb)
            sizes.append(len(Xb))
        X = torch.cat(rows)
        y = torch.cat(labels)
        ids = (X[:, 0] / 2).round().long()
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
    if shuffle and len(runs) > 1:
        first = torch.cat([b[1] for b in runs[0]])
        second = torch.cat([b[1] for b in runs[1]])
        expect(not torch.equal(first, second), "each epoch should shuffle anew, but two epochs came in the same order.")


@pytest.mark.minibatches
def test_minibatches_cover_each_sample_once(student):
    runs = student.probe(probe_minibatches, 37, 5, True, epochs=2, label="`minibatches`")
    _batches_ok(runs, 37, 5, True)


@pytest.mark.minibatches
def test_minibatches_exact_and_unshuffled(student):
    runs = student.probe(probe_minibatches, 40, 8, False, label="`minibatches`")
    _batches_ok(runs, 40, 8, False)
    runs = student.probe(probe_minibatches, 3, 10, True, label="`minibatches`")
    sizes = [len(b[0]) for b in runs[0]]
    expect(sizes == [3], f"with 3 samples and batch_size=10, one batch of 3 is expected, got sizes {sizes}.")


def _split_ok(out, n, val_frac):
    train = expect_tensor(out["train"], "train indices")
    val = expect_tensor(out["val"], "validation indices")
    n_val = len(val)
    expect(abs(n_val - n * val_frac) <= 1,
           f"with n={n} and val_frac={val_frac:g}, the validation part should have about {n * val_frac:g} "
           f"indices (within 1), but it has {n_val}.")
    overlap = set(train.tolist()) & set(val.tolist())
    expect(not overlap, f"{len(overlap)} indices are both in the training and the validation part: "
                        f"that leaks validation data into training.")
    expect(sorted(train.tolist() + val.tolist()) == list(range(n)),
           "train and validation indices together should be exactly 0..n-1, each once.")
    return train, val


@pytest.mark.split_indices
def test_split_indices_partition(student):
    for n, frac, seed in ((37, 0.2, 0), (1000, 0.15, 1)):
        out = student.probe(probe_split_indices, n, frac, seed, label="`split_indices`")
        train, val = _split_ok(out, n, frac)
    expect(sorted(val.tolist()) != list(range(len(val))) and sorted(val.tolist()) != list(range(1000 - len(val), 1000)),
           "the validation indices should be a random subset, not the first or last block of the data.")


@pytest.mark.split_indices
def test_split_indices_seeded(student):
    a = student.probe(probe_split_indices, 100, 0.2, 5, label="`split_indices`")
    b = student.probe(probe_split_indices, 100, 0.2, 5, label="`split_indices`")
    c = student.probe(probe_split_indices, 100, 0.2, 6, label="`split_indices`")
    expect(torch.equal(a["val"], b["val"]), "split_indices with the same seed should give the same split.")
    expect(not torch.equal(a["val"], c["val"]), "split_indices with different seeds should give different splits.")


@pytest.mark.split_loaders
def test_split_loaders_disjoint(student):
    n = 53
    out = student.probe(probe_split_loaders, n, 8, 0.2, 0, label="`split_loaders`")
    seen = {}
    for name in ("train", "valid"):
        expect(out[name + "_type"] == "DataLoader", f"the {name} loader should be a torch DataLoader, "
                                                    f"got {out[name + '_type']}.")
        epochs = out[name]
        ids_per_epoch = []
        for batches in epochs:
            ids = []
            for batch in batches:
                expect(len(batch) == 2, f"each {name} batch should be a pair (X, y).")
                xb, yb = batch
                expect_tensor(xb, f"{name} X batch")
                expect(len(xb) <= 8, f"{name} batches should have at most batch_size=8 samples, got {len(xb)}.")
                ids.extend(xb.reshape(-1).tolist())
            ids_per_epoch.append(ids)
        expect(len(set(ids_per_epoch[0])) == len(ids_per_epoch[0]),
               f"the {name} loader yields some samples twice in one epoch.")
        expect(sorted(ids_per_epoch[0]) == sorted(ids_per_epoch[1]),
               f"the {name} loader should yield the same samples every epoch.")
        seen[name] = set(ids_per_epoch[0])
    expect(not seen["train"] & seen["valid"],
           f"{len(seen['train'] & seen['valid'])} samples appear in both loaders: validation data leaks into training.")
    expect(seen["train"] | seen["valid"] == set(range(n)), "together the two loaders should cover every sample.")
    expect(abs(len(seen["valid"]) - 0.2 * n) <= 1, f"the validation loader should hold about 20% of {n} samples, "
                                                   f"it holds {len(seen['valid'])}.")
    train_epochs = [[i for xb, _ in batches for i in xb.reshape(-1).tolist()] for batches in out["train"]]
    expect(any(ids != sorted(ids) for ids in train_epochs),
           "the training loader should draw its samples in random order (SubsetRandomSampler).")


@pytest.mark.pair_dataset
def test_pair_dataset(student):
    n, d = 37, 3
    out = student.probe(probe_pair_dataset, n, d, 5, label="`PairDataset`")
    expect(out["is_dataset"], "PairDataset should subclass torch.utils.data.Dataset.")
    expect(out["len"] == n, f"len(PairDataset(X, y)) should be the number of samples {n}, got {out['len']}.")
    X, y = out["X"], out["y"]
    for item, i in zip(out["items"], (0, n // 2, n - 1)):
        expect(len(item) == 2, "dataset[i] should return a pair (X[i], y[i]).")
        expect_close(item[0], X[i], f"dataset[{i}][0]", rtol=0, atol=0)
        expect_close(item[1], y[i], f"dataset[{i}][1]", rtol=0, atol=0)
    sizes = [len(b[0]) for b in out["loaded"]]
    expect(sizes == [5] * 7 + [2], f"a DataLoader with batch_size=5 over 37 samples should give 7 batches of 5 "
                                   f"and one of 2, got {sizes}.")
    expect_close(torch.cat([b[0] for b in out["loaded"]]), X, "the X batches of a DataLoader over PairDataset",
                 rtol=0, atol=0)
    expect_close(torch.cat([b[1] for b in out["loaded"]]), y, "the y batches of a DataLoader over PairDataset",
                 rtol=0, atol=0)


@pytest.mark.reusable_module
def test_reusable_module(student):
    out = student.probe(probe_regression, W, B, 4000, 0.3, 0, module="my_datasets",
                        label="`my_datasets.make_regression`")
    _check_regression(out, 4000, 3, 0.3, what="my_datasets.make_regression")
    if not isinstance(out, dict):
        fail("my_datasets.make_regression returned an unexpected value.")
