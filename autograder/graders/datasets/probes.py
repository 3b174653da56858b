"""The probes of datasets: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


def probe_regression(ns, w, b, n, noise, seed, power=None, module=None):
    import torch

    from autograder.sandbox.inside.probing import student_function
    make_regression = student_function(ns, "make_regression", module)
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

    from autograder.sandbox.inside.probing import student_function
    minibatches = student_function(ns, "minibatches", module)
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
    from torch.utils.data import TensorDataset
    from autograder.sandbox.inside.probing import stand_ins
    features, labels = ids.clone(), ids * 10
    dataset = TensorDataset(features, labels)
    split_loaders = ns.require("split_loaders")
    calls = []

    def plain(value):
        return value if value is None or isinstance(value, (int, float, str)) else repr(value)

    def split_indices(n, val_frac, seed=None):
        calls.append([plain(n), plain(val_frac), plain(seed)])
        return train_idx.clone(), val_idx.clone()

    with stand_ins(ns.globals, {"split_indices": split_indices}):
        loaders = split_loaders(dataset, batch_size, val_frac, seed=seed)
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
