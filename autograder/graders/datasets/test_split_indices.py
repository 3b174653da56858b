"""Checks of task `split_indices`."""
import pytest
import torch

from autograder.judge.checks import expect

from .probes import probe_split_indices, probe_split_indices_reseeded
from .reference import _seed


def check_split(out, n, val_frac, where):
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
        train, val = check_split(out, n, frac, f"split_indices({n}, {frac:g}, seed={seed})")
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
            check_split(out, 100, 0.2, f"split_indices(100, 0.2, seed={seed})")
        expect(torch.equal(a["val"], b["val"]) and torch.equal(a["train"], b["train"]),
               f"split_indices(100, 0.2, seed={first}) called twice, with torch's global random state "
               f"different before each call, gave two different splits: the seed you are given should fix the "
               f"split (seed {first} included) whatever the random state before the call.")
        expect(not torch.equal(a["val"], c["val"]), "split_indices with different seeds should give different splits.")
