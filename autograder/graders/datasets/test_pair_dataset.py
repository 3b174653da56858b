"""Checks of task `pair_dataset`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor, fail

from .probes import probe_pair_dataset
from .reference import PAIR_CASES


def expect_pair(item, i, X, y, where, what):
    """item should be (X[i], y[i]): same shape, dtype and values."""
    expect(len(item) == 2, f"{where}: {what} should return a pair (X[{i}], y[{i}]), not {len(item)} item(s).")
    for k, (got, want, part) in enumerate(((item[0], X[i], "X"), (item[1], y[i], "y"))):
        if isinstance(got, int) and not isinstance(got, bool) and want.ndim == 0 and not want.is_floating_point():
            got = torch.tensor(got)  # a Python int label, as torchvision's datasets return, collates the same
        expect_tensor(got, f"{where}: {what}[{k}]", shape=tuple(want.shape), dtype=want.dtype)
        expect_close(got, want, f"{where}: {what}[{k}] (should be {part}[{i}])", rtol=0, atol=0)


def _pair_data(n, x_shape, y_kind, x_dtype=torch.float32):
    """The X and y a PairDataset is built from (made here, in the judging process)."""
    if x_dtype == torch.uint8:       # raw images, as a dataset file stores them
        X = torch.randint(0, 256, (n, *x_shape), generator=torch.Generator().manual_seed(3 + n), dtype=torch.uint8)
    else:
        X = torch.randn(n, *x_shape, generator=torch.Generator().manual_seed(3 + n))
    y = torch.arange(n) if y_kind == "labels" else torch.arange(n, dtype=torch.float32).reshape(n, 1) / 4
    return X, y


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
        expect_pair(item, i, X, y, where, f"dataset[{i}]")
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
    expect_pair(joined["item"], 1, X, y, where, f"(ds + ds)[{n + 1}]")
