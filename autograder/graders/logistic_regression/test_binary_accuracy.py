"""Checks of task `binary_accuracy`."""
import pytest
import torch

from autograder.judge.checks import expect
from autograder.judge.training import kind

from .probes import probe_accuracy


def accuracy_number(value, what):
    """The number binary_accuracy returned (a float, an int or a one-element tensor), or fail."""
    number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
    expect(isinstance(number, (int, float)) and not isinstance(number, bool),
           f"{what} should return one number (a float), not {kind(value)}"
           + (f" with {value.numel()} elements" if isinstance(value, torch.Tensor) else "") + ".")
    return float(number)


def _accuracy_case(shape_p, labels):
    gen = torch.Generator().manual_seed(8)
    p = torch.rand(37, generator=gen) * 0.98 + 0.01
    p[p.sub(0.5).abs() < 1e-3] = 0.3   # no probability right at the threshold
    y = torch.randint(0, 2, (37,), generator=gen)
    expected = ((p >= 0.5).long() == y).double().mean().item()
    sent_p = p.reshape(-1, 1) if shape_p == "(n, 1)" else p
    sent_y = y if labels == "(n,) int64" else y.float().reshape(-1, 1)
    return sent_p, sent_y, expected


@pytest.mark.binary_accuracy
@pytest.mark.parametrize("shape_p,labels", [("(n, 1)", "(n,) int64"), ("(n, 1)", "(n, 1) float"),
                                            ("(n,)", "(n,) int64")])
def test_binary_accuracy(student, shape_p, labels):
    p, y, expected = _accuracy_case(shape_p, labels)
    value = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = (f"binary_accuracy(y_hat, y) with probabilities y_hat {shape_p.replace('(n', '(37')} and labels "
            f"y {labels.replace('(n', '(37')}")
    number = accuracy_number(value, what)
    expect(abs(number - expected) <= 1e-6,
           f"{what} is {number:.4f}, but the fraction of examples whose class at threshold 0.5 matches "
           f"the label is {expected:.4f} (tolerance 1e-6).")
    expect(type(value) is float,
           f"{what} should return a Python float, but it returned {kind(value)} holding the right value: "
           f"turn a one-element tensor into a number with .item().")


@pytest.mark.binary_accuracy
def test_binary_accuracy_at_the_threshold(student):
    p = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.4999], dtype=torch.float64).reshape(-1, 1)
    y = torch.tensor([1, 1, 1, 1, 0, 0, 1, 0])
    expected = 7 / 8
    value = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = "binary_accuracy(y_hat, y) with probabilities of exactly 0.5 among y_hat"
    number = accuracy_number(value, what)
    expect(abs(number - expected) <= 1e-6,
           f"{what} is {number:.4f}, but it should be {expected:.4f} (tolerance 1e-6): a probability of "
           f"exactly 0.5 counts as class 1 (the model predicts class 1 when its probability is at least 0.5).")
    expect(type(value) is float, f"{what} should return a Python float, not {kind(value)}.")
