"""Checks of task `minibatches`."""
import pytest
import torch

from autograder.judge.checks import expect

from .probes import probe_minibatches, probe_minibatches_generator
from .reference import batches_ok, check_generator, _seed


@pytest.mark.minibatches
def test_minibatches_cover_each_sample_once(student):
    runs = student.probe(probe_minibatches, 37, 5, True, epochs=2, label="`minibatches`")
    first, second = batches_ok(runs, 37, 5, True)
    expect(not torch.equal(first, second), "each epoch should shuffle anew, but two epochs came in the same order.")


@pytest.mark.minibatches
def test_minibatches_exact_and_unshuffled(student):
    runs = student.probe(probe_minibatches, 40, 8, False, label="`minibatches`")
    batches_ok(runs, 40, 8, False)
    runs = student.probe(probe_minibatches, 3, 10, True, label="`minibatches`")
    sizes = [len(b[0]) for b in runs[0]]
    expect(sizes == [3], f"with 3 samples and batch_size=10, one batch of 3 is expected, got sizes {sizes}.")


@pytest.mark.minibatches
def test_minibatches_keep_dtypes(student):
    # float64 features and float32 targets (regression data kept in double precision), 31 samples in
    # batches of 6: the last batch holds a single row.
    dtypes = (torch.float64, torch.float32)
    runs = student.probe(probe_minibatches, 31, 6, True, dtypes=dtypes, label="`minibatches`")
    batches_ok(runs, 31, 6, True, dtypes=dtypes)


@pytest.mark.minibatches
def test_minibatches_generator(student):
    seed = _seed(11)
    runs = student.probe(probe_minibatches_generator, 29, 6, [seed, seed, seed + 1], label="`minibatches`")
    check_generator(runs, "minibatches on X of shape (29, 2, 2) and y of shape (29, 1)")
