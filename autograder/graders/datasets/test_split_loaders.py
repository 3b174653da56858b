"""Checks of task `split_loaders`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_tensor

from .probes import probe_split_loaders
from .reference import LATER, _seed


def _split(n, val_frac, seed):
    """The (train_idx, val_idx) that split_loaders is given by split_indices in these graders: a split made
    here, in the judging process, for this seed."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    cut = int(n * val_frac)
    return perm[cut:].clone(), perm[:cut].clone()


def _expect_two_loaders(out, where):
    expect(out["count"] == 2, f"{where}: should return two loaders (train_loader, valid_loader), not "
                              f"{'a ' + out['type'] if out['count'] < 0 else str(out['count']) + ' values'}.")


def _split_loaders(student, n, batch_size, val_frac, seed):
    train_idx, val_idx = _split(n, val_frac, seed)
    ids = torch.arange(n)
    out = student.probe(probe_split_loaders, ids, ids + LATER, batch_size, val_frac, seed, train_idx, val_idx,
                        label="`split_loaders`")
    return out, set(train_idx.tolist()), set(val_idx.tolist())


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
