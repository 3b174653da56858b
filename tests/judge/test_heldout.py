"""Held-out images sent to the student's process cannot be looked up in the public MNIST test set.

A submission could carry a table built from the published MNIST test split (every image's exact pixels,
or a hash of them, mapped to its label) and answer from it instead of learning. The graders send the
held-out images changed by ``autograder.judge.heldout.disguise`` with a secret drawn for each grading; here
such tables match none of the changed images, also after undoing the normalisation and rounding back to
the published 8-bit pixels, while they match every unchanged one (so the lookup itself works).
The reference keeps its accuracy margin on the changed images: see the calibrations in the docstrings of
``autograder/graders/mlp_gpu/`` and ``autograder/graders/mnist_cnn/``
(``benchmarks/calibrate_mlp_gpu.py``, ``benchmarks/calibrate_mnist.py``).
"""
import hashlib

import pytest
import torch

from autograder.judge import heldout
from autograder.graders.mlp_gpu import test_mnist_mlp as mlp       # the checks that send held-out images
from autograder.graders.mnist_cnn import test_mnist_cnn as cnn
from course import data

SECRETS = (1, 2024, 2 ** 61 + 7)
DISGUISES = {"07 graders": cnn.HELDOUT_DISGUISE,
             "module defaults": {"max_shift": heldout.MAX_SHIFT, "noise": heldout.NOISE}}


@pytest.fixture(scope="module")
def public():
    """The published MNIST test split: (images (10000, 28, 28) uint8, labels (10000,) int64)."""
    dataset = data.load_mnist(train=False, download=False)
    return dataset.data, dataset.targets


@pytest.fixture(scope="module")
def tables(public):
    """Lookup tables an attacker could build from the public files: key -> label."""
    images, labels = public
    normalised = cnn.normalize(images)
    exact, hashed, exact_float, hashed_float = {}, {}, {}, {}
    for image, x, label in zip(images, normalised, labels.tolist()):
        raw, raw_float = image.numpy().tobytes(), x.numpy().tobytes()
        exact[raw] = label
        hashed[hashlib.sha256(raw).hexdigest()] = label
        exact_float[raw_float] = label
        hashed_float[hashlib.sha256(raw_float).hexdigest()] = label
    return {"pixels": exact, "hash": hashed, "float pixels": exact_float, "float hash": hashed_float}


@pytest.fixture(scope="module")
def held_out():
    """The graders' held-out images (2,000, uint8) and their labels."""
    _, _, X_valid, y_valid = data.mnist_test_split_tensors(2000, seed=0)
    return X_valid, y_valid


def lookups(tables, x):
    """Every label the tables give for one received image x: (1, 28, 28) float32, normalised."""
    raw_float = x.numpy().tobytes()
    pixels = ((x[0] * cnn.MNIST_STD + cnn.MNIST_MEAN) * 255).round().clamp(0, 255).to(torch.uint8)
    raw = pixels.numpy().tobytes()
    found = [tables["float pixels"].get(raw_float), tables["float hash"].get(hashlib.sha256(raw_float).hexdigest()),
             tables["pixels"].get(raw), tables["hash"].get(hashlib.sha256(raw).hexdigest())]
    return [label for label in found if label is not None]


def test_tables_find_every_unchanged_image(tables, held_out):
    """The lookup works: images sent as published (only normalised) are all found, with their labels."""
    X_valid, y_valid = held_out
    received = cnn.normalize(X_valid)
    for x, label in zip(received, y_valid.tolist()):
        found = lookups(tables, x)
        assert len(found) == 4 and set(found) == {label}


@pytest.mark.parametrize("name", DISGUISES)
@pytest.mark.parametrize("secret", SECRETS)
def test_tables_find_no_disguised_image(tables, held_out, name, secret):
    X_valid, _ = held_out
    received = heldout.disguise(cnn.normalize(X_valid), secret, **DISGUISES[name])
    matched = sum(bool(lookups(tables, x)) for x in received)
    assert matched == 0, f"{matched} of {len(received)} disguised images found in a table of the public set"


@pytest.mark.parametrize("grader", [cnn, mlp], ids=["07", "06"])
def test_graders_send_disguised_images(held_out, grader):
    """What the 06 and 07 graders send is the normalised image changed by the secret, same shape and dtype."""
    X_valid, _ = held_out
    plain = grader.normalize(X_valid[:50])
    sent = grader.heldout_inputs(X_valid[:50], 1234)
    assert sent.shape == plain.shape == (50, 1, 28, 28) and sent.dtype == torch.float32
    assert torch.equal(sent, heldout.disguise(plain, 1234, **grader.HELDOUT_DISGUISE))
    assert not torch.equal(sent, plain)
    # small: noise of 0.1 times the images' spread, so the digits stay what they are
    assert 0.05 < (sent - plain).std().item() < 0.15


@pytest.mark.parametrize("name", DISGUISES)
def test_disguise_is_deterministic_per_secret_and_differs_across_secrets(held_out, name):
    X_valid, _ = held_out
    plain = cnn.normalize(X_valid[:200])
    first = heldout.disguise(plain, 77, **DISGUISES[name])
    assert torch.equal(first, heldout.disguise(plain, 77, **DISGUISES[name]))
    other = heldout.disguise(plain, 78, **DISGUISES[name])
    differs = (first != other).flatten(1).any(dim=1)
    assert bool(differs.all()), "two secrets gave the same disguised image"
    assert torch.equal(plain, cnn.normalize(X_valid[:200])), "disguise changed its input"


def test_every_grading_draws_a_new_secret():
    secrets = {heldout.grading_secret() for _ in range(20)}
    assert len(secrets) == 20
