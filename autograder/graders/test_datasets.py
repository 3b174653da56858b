"""Graders for 01-datasets: regression data, blobs, mini-batches, splits, a Dataset, a reusable module.

Statistical checks use sample sizes large enough that a correct solution passes for any seed:
with n samples of N(0, s^2), the sample mean lies within 5 s / sqrt(n) and the sample standard deviation
within 10% of s (n >= 2000) except with probability far below 1e-6.

Seeds. The seeds handed to the student's functions in statistical checks follow COURSE_GRADING_SEED
(default 0), so that the flakiness check can grade the reference under many seeds; seed 0 itself is always
tried where a seed must make results reproducible (``if seed:`` treats it as no seed at all). Graded
under COURSE_GRADING_SEED = 0..19 (benchmarks/flakiness.py's check), the reference never lost a point.

The judge decides, from data: probes call the student's code and return what it gives, never a verdict, and
every reference value is made here. `split_loaders` gets a stand-in `split_indices` that only returns a split
made here (index tensors, not an algorithm) and records its arguments; the judge reads from the batches the
loaders yield whether they draw exactly those indices, from the dataset itself (its values are changed once
`split_loaders` has returned, so a copy shows), in a new random order each epoch. `PairDataset` is built
from X and y sent from here, and `ds + ds` (the ConcatDataset that subclassing Dataset gives) is read like
the items. `reusable_module`: the text of my_datasets.py as read from disk next to the notebook (parsed here
for the two functions), the file `import my_datasets` loads, and the functions loaded from that file.

Edges (round 3): split_indices at n=4, val_frac=0.2 (int(0.8) = 0 validation indices: `perm[-0:]` is the whole
permutation) and n=5 (one); "same seed, same split" judged in one process with torch's, Python's and NumPy's
global random states set differently before each call (two forks start from the same state, so an unseeded
call looked seeded there); minibatches on float64 features and float32 targets, 31 samples in batches of 6 (a
last batch of one row); PairDataset on raw uint8 images; my_datasets.make_regression with power 2 and 3.

`nonlinear_data` has no code cell of its own: it grades the ``power`` argument of ``make_regression``
(written in the cell of `regression_data`), with noise 0 and bias 0, so that each task judges one thing.
"""
import os

import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.tasks import Task

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
# Tasks whose code is written in the solution cell of another task.
CODE_WRITTEN_IN = {"nonlinear_data": "regression_data"}

CONTRACT = {
    "regression_data": {
        "returns X of shape (n, d), float32": ["test_regression_shapes_and_noise", "test_regression_one_feature"],
        "returns y of shape (n, 1), float32": ["test_regression_shapes_and_noise", "test_regression_one_feature"],
        "w: (d,) float tensor of true coefficients, any d": ["test_regression_shapes_and_noise",
                                                              "test_regression_one_feature"],
        "X_ij ~ N(0, 1)": "test_regression_shapes_and_noise",
        "y = X w + b + noise: the bias b is added once": ["test_regression_shapes_and_noise",
                                                           "test_regression_exact_without_noise"],
        "noise: the standard deviation of the noise": ["test_regression_shapes_and_noise",
                                                       "test_regression_small_noise"],
        "noise=0 means no noise at all": ["test_regression_exact_without_noise", "test_regression_one_feature"],
        "the same seed gives the same data (seed 0 included)": "test_regression_seed",
        "different seeds give different data": "test_regression_seed",
        "the noise is Gaussian": "not enforced: its mean and standard deviation are checked; a non-Gaussian "
                                 "noise with exactly these moments is not a mistake students make",
    },
    "nonlinear_data": {
        "power=2 and power=3: each feature raised elementwise to the power before the linear map":
            "test_nonlinear_targets",
        "X keeps its shape (n, d) with power": "test_nonlinear_targets",
        "shapes, dtypes, noise and bias with power": "not enforced: here; the same code path is graded by "
                                                     "regression_data, so one mistake costs one task",
    },
    "blobs_data": {
        "X of shape (C * n_per_class, d), float32": ["test_blobs_shapes_and_labels", "test_blobs_seed"],
        "y of shape (C * n_per_class,), int64": ["test_blobs_shapes_and_labels", "test_blobs_seed"],
        "each class 0..C-1 exactly n_per_class times": "test_blobs_shapes_and_labels",
        "centers: (C, d) float tensor, any C and d": ["test_blobs_shapes_and_labels", "test_blobs_seed"],
        "point of class c is centers[c] + spread * N(0, I)": "test_blobs_centres_and_spread",
        "class by class or shuffled, both fine": "test_blobs_centres_and_spread",
        "the same seed gives the same data (seed 0 included), different seeds different data": "test_blobs_seed",
    },
    "minibatches": {
        "every sample appears exactly once per call": ["test_minibatches_cover_each_sample_once",
                                                       "test_minibatches_generator"],
        "shuffle=True: random order, different on every call": "test_minibatches_cover_each_sample_once",
        "shuffle=False: order 0..n-1": "test_minibatches_exact_and_unshuffled",
        "rows stay aligned: y_batch[i] belongs to X_batch[i]": ["test_minibatches_cover_each_sample_once",
                                                                "test_minibatches_generator"],
        "the last, smaller batch is kept": ["test_minibatches_cover_each_sample_once",
                                            "test_minibatches_exact_and_unshuffled"],
        "X: (n, ...), y: (n, ...) of any shape; batches keep the dtypes of X and y (float32/int64, and "
        "float64 features with float32 targets)":
            ["test_minibatches_cover_each_sample_once", "test_minibatches_generator", "test_minibatches_keep_dtypes"],
        "a last batch of a single row is kept as a batch of one": "test_minibatches_keep_dtypes",
        "generator: a given torch.Generator drives the shuffle (same seed, same order)": "test_minibatches_generator",
        "a generator (lazy) rather than a list": "not enforced: a list of the same batches behaves the same in "
                                                 "every use the course makes of minibatches",
    },
    "split_indices": {
        "train_idx and val_idx are int64 tensors (an empty part may keep torch.tensor([])'s float32: it indexes "
        "nothing)": "test_split_indices_partition",
        "together they hold 0..n-1 exactly once": "test_split_indices_partition",
        "val_idx has exactly int(n * val_frac) indices, at the edges too (n=4, val_frac=0.2: 0 of them; n=5: 1)":
            "test_split_indices_partition",
        "chosen at random (shuffled first)": "test_split_indices_partition",
        "the same seed gives the same split (seed 0 included), whatever torch's, Python's and NumPy's global "
        "random state before the call (re-seeded differently between the two calls)": "test_split_indices_seeded",
        "different seeds give different splits": "test_split_indices_seeded",
    },
    "split_loaders": {
        "returns (train_loader, valid_loader), two torch DataLoaders (judged by the batches they yield)":
            "test_split_loaders_disjoint",
        "both over the same dataset, each with a SubsetRandomSampler: they read the dataset given when "
        "iterated (no copy of the data), each exactly its own indices": "test_split_loaders_disjoint",
        "indices from split_indices, called with the seed given (seed 0 included)": "test_split_loaders_seeded",
        "split_indices called with n = len(dataset) and the val_frac given": "test_split_loaders_seeded",
        "disjoint parts that together cover the dataset": "test_split_loaders_disjoint",
        "batches of batch_size samples, the last may be smaller": "test_split_loaders_disjoint",
        "a new random order each epoch, the same samples": "test_split_loaders_disjoint",
    },
    "pair_dataset": {
        "subclasses torch.utils.data.Dataset, defining __len__ and __getitem__": "test_pair_dataset",
        "len(ds) is n": "test_pair_dataset",
        "ds[i] is (X[i], y[i]), same shape and dtype (float32 features, raw uint8 images kept uint8)":
            "test_pair_dataset",
        "X (n, ...) with any number of feature dimensions, y (n, ...)": "test_pair_dataset",
        "a DataLoader over it stacks items into batches, the last partial batch kept": "test_pair_dataset",
        "X and y of different lengths": "not enforced: the instructions ask for no check of mismatched lengths",
    },
    "reusable_module": {
        "my_datasets.py is a file next to the notebook (written by %%writefile) defining make_regression and "
        "minibatches, and `import my_datasets` loads that file": ["test_reusable_module",
                                                                  "test_reusable_module_minibatches"],
        "my_datasets.py defines make_regression with the same behaviour, power (2 and 3) included":
            "test_reusable_module",
        "my_datasets.py defines minibatches with the same behaviour, generator included":
            "test_reusable_module_minibatches",
        "the module imports what it uses": ["test_reusable_module", "test_reusable_module_minibatches"],
    },
}

W = [2.0, -3.4, 0.5]
B = 4.2


def grading_seed():
    """Seed of the graders' statistical checks (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base):
    """A seed for the student's function: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * grading_seed()


# ------------------------------------------------------------------------------------------ probes
def probe_regression(ns, w, b, n, noise, seed, power=None, module=None):
    import torch
    if module:                      # the functions of the file <module>.py itself, not of whatever an import serves
        import importlib.util
        spec = importlib.util.spec_from_file_location("graded_" + module, module + ".py")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        make_regression = loaded.make_regression
    else:
        make_regression = ns.require("make_regression")
    kwargs = {"noise": noise, "seed": seed}
    if power is not None:
        kwargs["power"] = power
    X, y = make_regression(torch.tensor(w), b, n, **kwargs)
    return {"X": X, "y": y}


def probe_regression_seeds(ns, w, b, n, seeds):
    import torch
    make_regression = ns.require("make_regression")
    return [tuple(make_regression(torch.tensor(w), b, n, noise=0.1, seed=seed)) for seed in seeds]


def probe_blobs(ns, n_per_class, centers, spread, seed):
    import torch
    X, y = ns.require("make_blobs")(n_per_class, torch.tensor(centers), spread=spread, seed=seed)
    return {"X": X, "y": y}


def probe_blobs_seeds(ns, n_per_class, centers, seeds):
    import torch
    make_blobs = ns.require("make_blobs")
    return [tuple(make_blobs(n_per_class, torch.tensor(centers), spread=1.0, seed=seed)) for seed in seeds]


def probe_minibatches(ns, n, batch_size, shuffle, epochs=1, dtypes=None):
    """Epochs of minibatches over X (n, 2) = row ids and y (n,) = 10 * ids, in dtypes (X's, y's): float32 and
    int64 unless given."""
    import torch
    minibatches = ns.require("minibatches")
    x_dtype, y_dtype = dtypes or (torch.float32, torch.int64)
    X = torch.arange(n * 2, dtype=x_dtype).reshape(n, 2)
    y = (torch.arange(n) * 10).to(y_dtype)
    runs = []
    for _ in range(epochs):
        batches = []
        for batch in minibatches(X, y, batch_size, shuffle=shuffle):
            batches.append(tuple(batch))
        runs.append(batches)
    return runs


def probe_minibatches_generator(ns, n, batch_size, gen_seeds, module=None):
    """Epochs of (n, 2, 2) features and (n, 1) labels, each shuffled by a generator seeded with gen_seeds[i];
    torch's global random state is set differently before each epoch (and restored afterwards)."""
    import torch
    if module:                      # the functions of the file <module>.py itself, not of whatever an import serves
        import importlib.util
        spec = importlib.util.spec_from_file_location("graded_" + module, module + ".py")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        minibatches = loaded.minibatches
    else:
        minibatches = ns.require("minibatches")
    X = torch.arange(n * 4, dtype=torch.float32).reshape(n, 2, 2)
    y = (torch.arange(n) * 10).reshape(n, 1)
    state = torch.get_rng_state()
    runs = []
    try:
        for i, gen_seed in enumerate(gen_seeds):
            torch.manual_seed(100 + i)
            gen = torch.Generator().manual_seed(gen_seed)
            runs.append([tuple(batch) for batch in minibatches(X, y, batch_size, shuffle=True, generator=gen)])
    finally:
        torch.set_rng_state(state)
    return runs


def probe_split_indices(ns, n, val_frac, seed):
    import torch
    parts = ns.require("split_indices")(n, val_frac, seed=seed)
    out = {"count": len(parts) if isinstance(parts, (tuple, list)) else -1}
    if out["count"] != 2:
        return out
    for name, part in zip(("train", "val"), parts):
        out[name + "_type"] = type(part).__name__
        out[name + "_dtype"] = str(part.dtype) if isinstance(part, torch.Tensor) else None
        out[name] = torch.as_tensor(part).reshape(-1)
        out[name + "_shape"] = list(torch.as_tensor(part).shape)
    return out


def probe_split_indices_reseeded(ns, n, val_frac, seeds):
    """split_indices(n, val_frac, seed=s) for each s in ``seeds``, in one process; before each call torch's,
    Python's and NumPy's global random states are set to a different value (and restored afterwards), so
    that only the seed given can make two splits alike."""
    import random
    import torch
    split_indices = ns.require("split_indices")
    state, py_state = torch.get_rng_state(), random.getstate()
    try:
        import numpy
        np_state = numpy.random.get_state()
    except ImportError:
        numpy = np_state = None
    outs = []
    try:
        for i, seed in enumerate(seeds):
            torch.manual_seed(200 + i)
            random.seed(200 + i)
            if numpy is not None:
                numpy.random.seed(200 + i)
            parts = split_indices(n, val_frac, seed=seed)
            out = {"count": len(parts) if isinstance(parts, (tuple, list)) else -1}
            if out["count"] == 2:
                for name, part in zip(("train", "val"), parts):
                    out[name + "_type"] = type(part).__name__
                    out[name + "_dtype"] = str(part.dtype) if isinstance(part, torch.Tensor) else None
                    out[name] = torch.as_tensor(part).reshape(-1)
                    out[name + "_shape"] = list(torch.as_tensor(part).shape)
            outs.append(out)
    finally:
        torch.set_rng_state(state)
        random.setstate(py_state)
        if numpy is not None:
            numpy.random.set_state(np_state)
    return outs


def probe_split_loaders(ns, ids, later, batch_size, val_frac, seed, train_idx, val_idx):
    """The student's split_loaders over TensorDataset(ids, 10 * ids), with a stand-in for split_indices that
    records its arguments and returns the judge's (train_idx, val_idx) as they are (so that this task is
    judged on its own: split_indices is graded separately). Once split_loaders has returned, the dataset's
    tensors are overwritten in place with ``later`` and 10 * later: loaders that read the dataset itself
    yield those values, loaders over a copy made earlier do not. Returns the calls and two epochs of each
    loader's batches."""
    import torch
    from torch.utils.data import TensorDataset
    features, labels = ids.clone(), ids * 10
    dataset = TensorDataset(features, labels)
    split_loaders = ns.require("split_loaders")
    calls = []

    def plain(value):
        return value if value is None or isinstance(value, (int, float, str)) else repr(value)

    def split_indices(n, val_frac, seed=None):
        calls.append([plain(n), plain(val_frac), plain(seed)])
        return train_idx.clone(), val_idx.clone()

    saved = ns.globals.get("split_indices")
    ns.globals["split_indices"] = split_indices
    try:
        loaders = split_loaders(dataset, batch_size, val_frac, seed=seed)
    finally:
        if saved is None:
            ns.globals.pop("split_indices", None)
        else:
            ns.globals["split_indices"] = saved
    features.copy_(later)
    labels.copy_(later * 10)
    out = {"calls": calls, "type": type(loaders).__name__,
           "count": len(loaders) if isinstance(loaders, (tuple, list)) else -1}
    if out["count"] != 2:
        return out
    for name, loader in zip(("train", "valid"), loaders):
        out[name + "_type"] = type(loader).__name__
        out[name] = [[tuple(batch) for batch in loader] for _ in range(2)]
    return out


def probe_pair_dataset(ns, X, y, batch_size):
    """PairDataset(X, y) with the judge's X and y: its length, three items, ds + ds (what subclassing
    Dataset gives: a ConcatDataset) and the batches of a DataLoader over it, all as returned."""
    from torch.utils.data import DataLoader
    cls = ns.require("PairDataset", kind="class")
    n = len(X)
    dataset = cls(X.clone(), y.clone())

    def parts(item):
        return tuple(item) if isinstance(item, (tuple, list)) else (item,)

    try:
        items = [parts(dataset[i]) for i in (0, n // 2, n - 1)]
    except NotImplementedError as exc:       # judged in the judging process (torch's Dataset says which)
        return {"getitem_error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    out = {"len": len(dataset), "items": items,
           "loaded": [tuple(batch) for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)]}
    try:
        joined = dataset + dataset
        out["joined"] = {"len": len(joined), "item": parts(joined[n + 1])}
    except Exception as exc:                 # judged in the judging process
        out["joined"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return out


def probe_module_file(ns, name):
    """The text of <name>.py in the notebook's folder as read from disk (None when there is no such file),
    and the file that ``import <name>`` loads, relative to that folder (or the import's error)."""
    import importlib
    import os
    import sys
    out = {"text": None, "imported_from": None, "import_error": None}
    try:
        with open(name + ".py", encoding="utf-8") as handle:
            out["text"] = handle.read(200_000)
    except OSError as exc:
        out["read_error"] = type(exc).__name__
    sys.path.insert(0, ".")
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
    except Exception as exc:                 # judged in the judging process
        out["import_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    where = getattr(module, "__file__", None)
    out["imported_from"] = os.path.relpath(where) if isinstance(where, str) else repr(where)
    return out


# ------------------------------------------------------------------------------------------ helpers
def _check_regression(out, n, w, b, noise, power=1, what="make_regression"):
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


def _expect_same(first, second):
    """Two tuples of tensors are equal element by element (exactly, dtype included)."""
    return all(isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
               and a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second))


# ------------------------------------------------------------------------------------------ graders
@pytest.mark.regression_data
def test_regression_shapes_and_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.5, _seed(0), label="`make_regression`")
    _check_regression(out, 4000, W, B, 0.5)


@pytest.mark.regression_data
def test_regression_exact_without_noise(student):
    out = student.probe(probe_regression, W, B, 37, 0.0, _seed(1), label="`make_regression`")
    _check_regression(out, 37, W, B, 0.0)


@pytest.mark.regression_data
def test_regression_one_feature(student):
    out = student.probe(probe_regression, [1.5], -0.5, 20, 0.0, _seed(4), label="`make_regression`")
    _check_regression(out, 20, [1.5], -0.5, 0.0, what="make_regression with a single feature (w of shape (1,))")


@pytest.mark.regression_data
def test_regression_small_noise(student):
    out = student.probe(probe_regression, W, B, 4000, 0.01, _seed(2), label="`make_regression`")
    _check_regression(out, 4000, W, B, 0.01)


@pytest.mark.regression_data
def test_regression_seed(student):
    other = _seed(8)
    runs = student.probe(probe_regression_seeds, W, B, 50, [0, 0, 1, other, other], label="`make_regression`")
    for name, i, j in (("seed=0", 0, 1), (f"seed={other}", 3, 4)):
        for k, part in enumerate(("X", "y")):
            expect_tensor(runs[i][k], f"{part} returned by make_regression")
        expect(_expect_same(runs[i], runs[j]),
               f"make_regression called twice with {name} should return the same X and y both times "
               f"(seed 0 is a seed like any other: test `seed is None`, not `if seed:`).")
    expect(not torch.equal(runs[0][0], runs[2][0]) and not torch.equal(runs[2][0], runs[3][0]),
           "make_regression with different seeds should return different X.")


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


CENTERS = [[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [-5.0, 5.0, 2.0], [0.0, -6.0, -3.0]]


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
        expect(_expect_same(runs[i], runs[j]),
               f"make_blobs called twice with {name} should return the same X and y both times "
               f"(seed 0 is a seed like any other: test `seed is None`, not `if seed:`).")
    expect(not torch.equal(runs[0][0], runs[2][0]) and not torch.equal(runs[2][0], runs[3][0]),
           "make_blobs with different seeds should return different X.")


def _batches_ok(runs, n, batch_size, shuffle, row_shape=(2,), label_shape=(), dtypes=(torch.float32, torch.int64)):
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


@pytest.mark.minibatches
def test_minibatches_cover_each_sample_once(student):
    runs = student.probe(probe_minibatches, 37, 5, True, epochs=2, label="`minibatches`")
    first, second = _batches_ok(runs, 37, 5, True)
    expect(not torch.equal(first, second), "each epoch should shuffle anew, but two epochs came in the same order.")


@pytest.mark.minibatches
def test_minibatches_exact_and_unshuffled(student):
    runs = student.probe(probe_minibatches, 40, 8, False, label="`minibatches`")
    _batches_ok(runs, 40, 8, False)
    runs = student.probe(probe_minibatches, 3, 10, True, label="`minibatches`")
    sizes = [len(b[0]) for b in runs[0]]
    expect(sizes == [3], f"with 3 samples and batch_size=10, one batch of 3 is expected, got sizes {sizes}.")


@pytest.mark.minibatches
def test_minibatches_keep_dtypes(student):
    # float64 features and float32 targets (regression data kept in double precision), 31 samples in
    # batches of 6: the last batch holds a single row.
    dtypes = (torch.float64, torch.float32)
    runs = student.probe(probe_minibatches, 31, 6, True, dtypes=dtypes, label="`minibatches`")
    _batches_ok(runs, 31, 6, True, dtypes=dtypes)


def _check_generator(runs, what):
    """runs: epochs shuffled by generators seeded s, s, s + 1 (torch's global state different each time)."""
    orders = _batches_ok(runs, 29, 6, True, row_shape=(2, 2), label_shape=(1,))
    expect(torch.equal(orders[0], orders[1]),
           f"{what} with generator=torch.Generator().manual_seed(s), called twice, should give the same order "
           f"both times: shuffle with the generator you are given (torch.randperm(n, generator=generator)), "
           f"not with torch's global random state or Python's random module.")
    expect(not torch.equal(orders[0], orders[2]),
           f"{what} with generators of different seeds should give different orders.")


@pytest.mark.minibatches
def test_minibatches_generator(student):
    seed = _seed(11)
    runs = student.probe(probe_minibatches_generator, 29, 6, [seed, seed, seed + 1], label="`minibatches`")
    _check_generator(runs, "minibatches on X of shape (29, 2, 2) and y of shape (29, 1)")


def _check_split(out, n, val_frac, where):
    expect(out["count"] == 2, f"{where}: should return two parts (train_idx, val_idx).")
    for name in ("train", "val"):
        empty = out[name + "_type"] == "Tensor" and 0 in out[name + "_shape"]
        expect(out[name + "_type"] == "Tensor" and (out[name + "_dtype"] == "torch.int64" or empty),
               f"{where}: {name}_idx should be an int64 tensor, but it is a {out[name + '_type']}"
               f"{' of dtype ' + out[name + '_dtype'] if out[name + '_dtype'] else ''} "
               f"(torch.randperm gives int64 tensors).")
        expect(len(out[name + "_shape"]) == 1,
               f"{where}: {name}_idx should be 1-D, but it has shape {tuple(out[name + '_shape'])}.")
    train, val = out["train"], out["val"]
    n_val = int(n * val_frac)
    expect(len(val) == n_val and len(train) == n - n_val,
           f"{where}: the validation part should have int(n * val_frac) = int({n * val_frac:g}) = {n_val} "
           f"indices and the training part the other {n - n_val}, but they have {len(val)} and {len(train)}.")
    overlap = set(train.tolist()) & set(val.tolist())
    expect(not overlap, f"{where}: {len(overlap)} indices are both in the training and the validation part: "
                        f"that leaks validation data into training.")
    expect(sorted(train.tolist() + val.tolist()) == list(range(n)),
           f"{where}: train and validation indices together should be exactly 0..n-1, each once.")
    return train, val


@pytest.mark.split_indices
def test_split_indices_partition(student):
    # (4, 0.2): int(0.8) = 0 validation indices; (5, 0.2): exactly one.
    for n, frac, seed in ((4, 0.2, _seed(3)), (5, 0.2, _seed(4)), (37, 0.2, _seed(0)), (38, 0.25, _seed(2)),
                          (1000, 0.15, _seed(1))):
        out = student.probe(probe_split_indices, n, frac, seed, label="`split_indices`")
        train, val = _check_split(out, n, frac, f"split_indices({n}, {frac:g}, seed={seed})")
    expect(sorted(val.tolist()) != list(range(len(val))) and sorted(val.tolist()) != list(range(1000 - len(val), 1000)),
           "the validation indices should be a random subset, not the first or last block of the data.")


@pytest.mark.split_indices
def test_split_indices_seeded(student):
    other = _seed(5)
    for first, second in ((0, 1), (other, other + 1)):
        # a and b in one process, torch's (and Python's, NumPy's) global random state set differently before
        # each call: only the seed given can make them alike.
        a, b, c = student.probe(probe_split_indices_reseeded, 100, 0.2, [first, first, second],
                                label="`split_indices`")
        for out, seed in ((a, first), (b, first), (c, second)):
            _check_split(out, 100, 0.2, f"split_indices(100, 0.2, seed={seed})")
        expect(torch.equal(a["val"], b["val"]) and torch.equal(a["train"], b["train"]),
               f"split_indices(100, 0.2, seed={first}) called twice, with torch's global random state "
               f"different before each call, gave two different splits: the seed you are given should fix the "
               f"split (seed {first} included) whatever the random state before the call.")
        expect(not torch.equal(a["val"], c["val"]), "split_indices with different seeds should give different splits.")


LATER = 1000     # what the probe adds to the dataset's values once split_loaders has returned


def _loader_ids(out, name, batch_size, size, where):
    """Sample ids per epoch of one loader, after checking its batches: pairs, sizes, read from the dataset."""
    expected_sizes = [batch_size] * (size // batch_size) + ([size % batch_size] if size % batch_size else [])
    epochs = []
    for batches in out[name]:
        ids = []
        for batch in batches:
            expect(len(batch) == 2, f"{where}: each {name} batch should be a pair (X, y), as a DataLoader over "
                                    f"the dataset gives them.")
            xb, _ = batch
            expect_tensor(xb, f"{name} X batch")
            ids.extend(xb.reshape(-1).tolist())
        sizes = [len(b[0]) for b in batches]
        expect(sizes == expected_sizes,
               f"{where}: the {name} loader over {size} samples should give batches of batch_size={batch_size} "
               f"(the last may be smaller): {expected_sizes}, but it gives {sizes}.")
        expect(all(i >= LATER for i in ids),
               f"{where}: the {name} loader yields samples the dataset no longer holds: it reads a copy of the "
               f"data made when split_loaders ran. Give the DataLoader the dataset itself, with "
               f"sampler=SubsetRandomSampler(its indices), so that it looks the samples up when iterated.")
        epochs.append([i - LATER for i in ids])
    return epochs


def _split(n, val_frac, seed):
    """The (train_idx, val_idx) that split_loaders is given by split_indices in these graders: a split made
    here, in the judging process, for this seed."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    cut = int(n * val_frac)
    return perm[cut:].clone(), perm[:cut].clone()


def _split_loaders(student, n, batch_size, val_frac, seed):
    train_idx, val_idx = _split(n, val_frac, seed)
    ids = torch.arange(n)
    out = student.probe(probe_split_loaders, ids, ids + LATER, batch_size, val_frac, seed, train_idx, val_idx,
                        label="`split_loaders`")
    return out, set(train_idx.tolist()), set(val_idx.tolist())


def _expect_two_loaders(out, where):
    expect(out["count"] == 2, f"{where}: should return two loaders (train_loader, valid_loader), not "
                              f"{'a ' + out['type'] if out['count'] < 0 else str(out['count']) + ' values'}.")


@pytest.mark.split_loaders
def test_split_loaders_disjoint(student):
    n, batch_size = 53, 8
    out, train, val = _split_loaders(student, n, batch_size, 0.2, _seed(3))
    where = f"split_loaders over {n} samples with batch_size={batch_size}, val_frac=0.2"
    _expect_two_loaders(out, where)
    seen, epochs = {}, {}
    for name, size in (("train", n - 10), ("valid", 10)):
        epochs[name] = _loader_ids(out, name, batch_size, size, where)
        expect(len(set(epochs[name][0])) == len(epochs[name][0]),
               f"{where}: the {name} loader yields some samples twice in one epoch.")
        expect(sorted(epochs[name][0]) == sorted(epochs[name][1]),
               f"{where}: the {name} loader should yield the same samples every epoch.")
        seen[name] = set(epochs[name][0])
    expect(not seen["train"] & seen["valid"],
           f"{where}: {len(seen['train'] & seen['valid'])} samples appear in both loaders: validation data leaks "
           f"into training.")
    expect(seen["train"] | seen["valid"] == set(range(n)), f"{where}: together the two loaders should cover "
                                                           f"every sample.")
    expect(seen["train"] == train and seen["valid"] == val,
           f"{where}: the training loader should draw exactly train_idx and the validation loader exactly "
           f"val_idx, as split_indices returns them (in that order).")
    expect(all(ids != sorted(ids) for ids in epochs["train"]),
           f"{where}: the training loader should draw its samples in random order (SubsetRandomSampler).")
    expect(epochs["train"][0] != epochs["train"][1],
           f"{where}: the training loader gave its {n - 10} samples in the same order in two epochs: it should "
           f"draw them in a new random order each epoch (sampler=SubsetRandomSampler(train_idx), not the "
           f"index list itself as the sampler).")


@pytest.mark.split_loaders
def test_split_loaders_seeded(student):
    n, batch_size, val_frac = 40, 16, 0.25
    for seed in (0, _seed(7)):
        out, train, val = _split_loaders(student, n, batch_size, val_frac, seed)
        where = f"split_loaders(dataset, {batch_size}, {val_frac}, seed={seed})"
        expect(out["calls"], f"{where}: take the indices from split_indices (the previous task's function); "
                             f"split_loaders did not call it.")
        for call_n, call_frac, call_seed in out["calls"]:
            expect(call_seed == seed and not isinstance(call_seed, bool),
                   f"{where}: pass the seed you are given on to split_indices (it was called with seed="
                   f"{call_seed!r}): without it the split changes from run to run, and validation samples of one "
                   f"run are training samples of the next.")
            expect(call_n == n and call_frac == val_frac,
                   f"{where}: call split_indices with n = len(dataset) = {n} and val_frac = {val_frac}; it was "
                   f"called with n={call_n!r}, val_frac={call_frac!r}.")
        _expect_two_loaders(out, where)
        got = {}
        for name, size in (("train", len(train)), ("valid", len(val))):
            got[name] = set(_loader_ids(out, name, batch_size, size, where)[0])
        expect(got["train"] == train and got["valid"] == val,
               f"{where}: the training loader should draw exactly train_idx and the validation loader exactly "
               f"val_idx, as split_indices returns them (in that order).")


def _pair_data(n, x_shape, y_kind, x_dtype=torch.float32):
    """The X and y a PairDataset is built from (made here, in the judging process)."""
    if x_dtype == torch.uint8:       # raw images, as a dataset file stores them
        X = torch.randint(0, 256, (n, *x_shape), generator=torch.Generator().manual_seed(3 + n), dtype=torch.uint8)
    else:
        X = torch.randn(n, *x_shape, generator=torch.Generator().manual_seed(3 + n))
    y = torch.arange(n) if y_kind == "labels" else torch.arange(n, dtype=torch.float32).reshape(n, 1) / 4
    return X, y


def _expect_pair(item, i, X, y, where, what):
    """item should be (X[i], y[i]): same shape, dtype and values."""
    expect(len(item) == 2, f"{where}: {what} should return a pair (X[{i}], y[{i}]), not {len(item)} item(s).")
    for k, (got, want, part) in enumerate(((item[0], X[i], "X"), (item[1], y[i], "y"))):
        if isinstance(got, int) and not isinstance(got, bool) and want.ndim == 0 and not want.is_floating_point():
            got = torch.tensor(got)  # a Python int label, as torchvision's datasets return, collates the same
        expect_tensor(got, f"{where}: {what}[{k}]", shape=tuple(want.shape), dtype=want.dtype)
        expect_close(got, want, f"{where}: {what}[{k}] (should be {part}[{i}])", rtol=0, atol=0)


PAIR_CASES = {"features": (37, (3,), "labels", 5, torch.float32),
              "images": (23, (1, 4, 4), "targets", 4, torch.float32),
              "raw_images": (13, (1, 4, 4), "labels", 4, torch.uint8)}


@pytest.mark.pair_dataset
@pytest.mark.parametrize("case", sorted(PAIR_CASES))
def test_pair_dataset(student, case):
    n, x_shape, y_kind, batch_size, x_dtype = PAIR_CASES[case]
    X, y = _pair_data(n, x_shape, y_kind, x_dtype)
    out = student.probe(probe_pair_dataset, X, y, batch_size, label="`PairDataset`")
    where = (f"PairDataset(X, y) with X of shape {(n, *x_shape)} {str(x_dtype).replace('torch.', '')} and y of shape "
             f"{(n,) if y_kind == 'labels' else (n, 1)} {'int64' if y_kind == 'labels' else 'float32'}")
    if "getitem_error" in out:
        if "should implement __getitem__" in out["getitem_error"]:
            fail(f"{where}: dataset[i] raised NotImplementedError from torch's Dataset: PairDataset defines no "
                 f"__getitem__ of its own. Define `def __getitem__(self, i):` (two underscores on each side) "
                 f"returning (X[i], y[i]).")
        fail(f"{where}: dataset[i] raised {out['getitem_error']}.")
    expect(out["len"] == n, f"{where}: len(dataset) should be the number of samples {n}, got {out['len']}.")
    for item, i in zip(out["items"], (0, n // 2, n - 1)):
        _expect_pair(item, i, X, y, where, f"dataset[{i}]")
    expected = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    sizes = [len(b[0]) for b in out["loaded"]]
    expect(sizes == expected, f"{where}: a DataLoader with batch_size={batch_size} should give batches of sizes "
                              f"{expected}, got {sizes}.")
    expect_close(torch.cat([b[0] for b in out["loaded"]]), X, f"{where}: the X batches of a DataLoader",
                 rtol=0, atol=0)
    expect_close(torch.cat([b[1] for b in out["loaded"]]), y, f"{where}: the y batches of a DataLoader",
                 rtol=0, atol=0)
    joined = out["joined"]
    if "error" in joined:
        fail(f"PairDataset should subclass torch.utils.data.Dataset (class PairDataset(Dataset)): what a Dataset "
             f"can do, such as `ds + ds` (a ConcatDataset), fails with it: {joined['error']}.")
    expect(joined["len"] == 2 * n, f"{where}: `ds + ds` (the ConcatDataset that Dataset gives) should hold "
                                   f"{2 * n} items, but it holds {joined['len']}.")
    _expect_pair(joined["item"], 1, X, y, where, f"(ds + ds)[{n + 1}]")


def _module_file(student):
    """my_datasets.py as it is on disk next to the notebook: fail unless it defines the required functions
    and is what `import my_datasets` loads."""
    import ast
    out = student.probe(probe_module_file, "my_datasets", label="`my_datasets.py`")
    if out["text"] is None:
        fail("There is no file my_datasets.py next to your notebook: the cell of this task should start with "
             "`%%writefile my_datasets.py` and hold the functions, so that running it writes the module.")
    try:
        tree = ast.parse(out["text"])
    except SyntaxError as exc:
        fail(f"my_datasets.py is not valid Python (line {exc.lineno}: {exc.msg}): write only Python code after "
             f"the `%%writefile my_datasets.py` line.")
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
    missing = [name for name in ("make_regression", "minibatches") if name not in defined]
    expect(not missing, f"my_datasets.py does not define {' and '.join(missing)}: write "
                        f"{'both functions' if len(missing) == 2 else 'the function'} into the file itself.")
    if out["import_error"]:
        fail(f"`import my_datasets` fails: {out['import_error']}.")
    expect(out["imported_from"] == "my_datasets.py",
           f"`import my_datasets` does not load the file my_datasets.py next to your notebook (it loads "
           f"{out['imported_from']}): the module should be that file.")


@pytest.mark.reusable_module
def test_reusable_module(student):
    _module_file(student)
    out = student.probe(probe_regression, W, B, 4000, 0.3, _seed(0), module="my_datasets",
                        label="`my_datasets.make_regression`")
    if not isinstance(out, dict):
        fail("my_datasets.make_regression returned an unexpected value.")
    _check_regression(out, 4000, W, B, 0.3, what="my_datasets.make_regression")
    for power in (2, 3):
        out = student.probe(probe_regression, W, B, 50, 0.0, _seed(6), power=power, module="my_datasets",
                            label=f"`my_datasets.make_regression(..., power={power})`")
        _check_regression(out, 50, W, B, 0.0, power=power, what=f"my_datasets.make_regression(..., power={power})")


@pytest.mark.reusable_module
def test_reusable_module_minibatches(student):
    _module_file(student)
    seed = _seed(12)
    runs = student.probe(probe_minibatches_generator, 29, 6, [seed, seed, seed + 1], module="my_datasets",
                         label="`my_datasets.minibatches`")
    _check_generator(runs, "my_datasets.minibatches")
