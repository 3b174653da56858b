"""Judge-side checks of what a training loop gave back, shared by the graders of the lessons that write one:
its history, the parameters it trained in place, and the optimizer's start. Every tolerance is stated in the
message it fails with."""
import math

import torch

from autograder.judge.checks import expect, expect_tensor


def kind(value):
    """How a value that came back is named in messages: "a tuple of 3 values", "a dict", "None"."""
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    return f"a {type(value).__name__}"


def history_losses(history, what):
    """The numbers of history['train_loss'] from a history that came back, or fail."""
    expect(isinstance(history, dict),
           f"{what} should return a history dict {{'epoch': [...], 'train_loss': [...]}}, but it returned "
           f"{kind(history)}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, (list, tuple)),
           f"The history of {what} should have a key 'train_loss' holding a list of numbers (it has keys "
           f"{sorted(str(k) for k in history)}).")
    values = []
    for value in losses:
        expect(not isinstance(value, torch.Tensor),
               f"The history of {what} should hold Python floats in 'train_loss', but it holds tensors: turn "
               f"each loss into a number with .item(), so that the history holds numbers, not tensors.")
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"The history of {what} should hold one number per epoch in 'train_loss', but it holds "
               f"{kind(value)}.")
        values.append(float(value))
    return values


def expect_epochs(history, num_epochs, what):
    """history['epoch'] is [1, ..., num_epochs] (history is a dict, checked by history_losses)."""
    epochs = history.get("epoch")
    want = list(range(1, num_epochs + 1))
    shown = epochs if isinstance(epochs, (list, tuple)) else kind(epochs)
    expect(isinstance(epochs, (list, tuple)) and len(epochs) == num_epochs
           and all(isinstance(e, (int, float)) and not isinstance(e, bool) and e == k for e, k in zip(epochs, want)),
           f"The history of {what} should have a key 'epoch' holding {want} for {num_epochs} epochs (counted "
           f"from 1), but it holds {shown}.")


def expect_trained_in_place(out, w0, b0, probe_grads, what):
    """w (d, 1) and b (1,) as the caller holds them after ``what``: changed, and still leaves that require grad
    (a backward with the judge's ``probe_grads`` after training filled their .grad); returns them."""
    w = expect_tensor(out["w"], f"w after {what}", shape=tuple(w0.shape))
    b = expect_tensor(out["b"], f"b after {what}", shape=tuple(b0.shape))
    expect(not (torch.equal(w, w0) and torch.equal(b, b0)),
           f"{what} did not change the w and b it was given: the training loop must update those very tensors "
           f"(through updater), not new ones.")
    reached = all(g is not None and g.shape == want.shape and torch.allclose(g.double(), want.double())
                  for g, want in zip(out["grads"], probe_grads))
    expect(reached, f"After {what}, w and b should still be leaf tensors that require grad: a loss's backward() "
                    f"no longer fills their .grad.")
    return w, b


def linear_start(created, d, what):
    """(weight (1, d), bias (1,)) that the student's torch.optim.SGD started from, or fail."""
    expect(len(created) >= 1, f"{what} should train with torch.optim.SGD(net.parameters(), lr=lr); no "
                              f"torch.optim.SGD was created.")
    start = created[-1]["start"]
    weights = [t for t in start if tuple(t.shape) in ((1, d), (d, 1), (d,))]
    biases = [t for t in start if tuple(t.shape) in ((1,), ())]
    expect(len(start) == 2 and len(weights) == 1 and len(biases) == 1,
           f"{what} should optimise the weight and the bias of one nn.Linear({d}, 1) (2 tensors); the optimizer "
           f"was given {len(start)} tensors of shapes {[tuple(t.shape) for t in start]}.")
    return weights[0].reshape(1, d), biases[0].reshape(1)


def expect_history_matches(history, expected, num_epochs, what, rule, rtol):
    """history['train_loss'] holds the ``expected`` loss of each epoch (relative tolerance ``rtol``)."""
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs,
           f"{what} should return a history dict whose 'train_loss' holds one number per epoch "
           f"({num_epochs} for {num_epochs} epochs), not {len(losses)}.")
    for epoch, (got, want) in enumerate(zip(losses, expected), start=1):
        expect(math.isfinite(got) and abs(got - want) <= rtol * max(1.0, abs(want)),
               f"In epoch {epoch}, {what} reports train_loss {got:.6g}, but {rule} is {want:.6g} (relative "
               f"tolerance {rtol:g}). With 45 or 65 examples the last minibatch is smaller: weigh each "
               f"batch by its number of examples, and start each epoch's sum afresh.")
