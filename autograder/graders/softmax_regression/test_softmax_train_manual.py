"""Checks of task `softmax_train_manual`."""
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_tensor, fail

from .probes import probe_train_manual
from .reference import (BATCH_SIZE, KEEP_A_LEAF, LOGIT_OFFSET, LOSS_SCALE, LR, NUM_CLASSES, NUM_EPOCHS, NUM_INPUTS,
                        TOL_TRACE_LOSS, TOL_TRACE_PARAMS, TRACE_BATCH, TRACE_EPOCHS, TRACE_LR, TRACE_N, TRAIN_SEED,
                        expect_gradient_lands, expect_outcome, score, _seed, _unchanged, grading_seed,
                        training_data)


def initial_params(seed=0):
    """The W (d, C) ~ N(0, 0.01^2) and b = 0 the manual-training graders start from (grading seed ``seed``)."""
    W = 0.01 * torch.randn(NUM_INPUTS, NUM_CLASSES, generator=torch.Generator().manual_seed(_seed(5, seed)))
    return W, torch.zeros(NUM_CLASSES)


def replay_manual(X, y, W0, b0, lr, num_epochs, batch_size, seed):
    """The loop of the instructions in the judging process, with the grader's softmax_regression and
    cross_entropy of the manual loop (LOGIT_OFFSET, LOSS_SCALE): (W, b, train_loss per epoch)."""
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)   # the same stream as torch.manual_seed(seed) in the probe
    losses = []
    for _ in range(num_epochs):
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            loss = LOSS_SCALE * F.cross_entropy(X[rows] @ W + (b + LOGIT_OFFSET), y[rows])
            loss.backward()
            with torch.no_grad():
                for p in (W, b):
                    p -= lr * p.grad
                    p.grad.zero_()
            total += loss.item() * len(rows)
        losses.append(total / len(X))
    return W.detach(), b.detach(), losses


def _train_manual(student, X, y, W0, b0, lr, num_epochs, batch_size, seed):
    """The student's train_softmax from W0, b0 at learning rate lr, as the grader runs it (see LOGIT_OFFSET):
    the probe's output, with the caller's W and b as given to train_softmax under "W0", "b0", and the
    gradients that a backward pass should leave in W.grad and b.grad under "G_W", "G_b"."""
    gen = torch.Generator().manual_seed(seed + 7)
    G_W, G_b = torch.randn(*W0.shape, generator=gen), torch.randn(*b0.shape, generator=gen)
    W_start, b_start = W0.clone(), b0 - LOGIT_OFFSET
    out = student.probe(probe_train_manual, X, y, W_start, b_start, lr / LOSS_SCALE, num_epochs, batch_size, seed,
                        LOGIT_OFFSET, LOSS_SCALE, G_W, G_b, label="`train_softmax`")
    out.update({"W0": W_start, "b0": b_start, "G_W": G_W, "G_b": G_b})
    return out


def manual_outcome(student, seed=None):
    """Train the student's manual pipeline on the grader's blobs; returns (accuracy, loss), probe output.

    ``seed`` is the grading seed (default: COURSE_GRADING_SEED): the data, the initial W and the
    training seed follow it.
    """
    seed = grading_seed() if seed is None else seed
    X_train, y_train, X_test, y_test = training_data(seed)
    W0, b0 = initial_params(seed)
    out = _train_manual(student, X_train, y_train, W0, b0, LR, NUM_EPOCHS, BATCH_SIZE, TRAIN_SEED + seed)
    W, b = out["W"], out["b"]
    expect_tensor(W, "W after train_softmax", shape=(NUM_INPUTS, NUM_CLASSES))
    expect_tensor(b, "b after train_softmax", shape=(NUM_CLASSES,))
    O = X_test.double() @ W.double() + (b + LOGIT_OFFSET).double()
    return score(O, y_test), out


@pytest.mark.softmax_train_manual
def test_train_manual_outcome(student):
    seed = grading_seed()
    (accuracy, loss), out = manual_outcome(student, seed)
    X_train, y_train, _, _ = training_data(seed)
    expect(not (torch.equal(out["W"], out["W0"]) and torch.equal(out["b"], out["b0"])),
           "After train_softmax(W, b, ...), the caller's W and b still hold their initial values: update "
           "them in place (sgd does, under torch.no_grad()) instead of rebinding the names.")
    for key in ("W", "b"):
        expect_gradient_lands(out[f"{key}_grad"], out[f"G_{key}"],
                               f"After train_softmax, {key} should still be a leaf tensor that requires grad",
                               KEEP_A_LEAF)
    expect(_unchanged(out["X_after"], X_train) and _unchanged(out["y_after"], y_train),
           "train_softmax modified X or y: the training data must stay unchanged.")
    expect(bool(torch.isfinite(out["W"]).all() and torch.isfinite(out["b"]).all()),
           "After train_softmax, W or b contains inf or NaN: the training diverged.")
    expect_outcome(accuracy, loss, "Softmax regression trained by train_softmax", lr=LR / LOSS_SCALE)
    history = out["history"]
    if not isinstance(history, dict):
        fail(f"train_softmax should return the history dict, but it returned {history}.")
    expect(history.get("epoch") == list(range(1, NUM_EPOCHS + 1)),
           f"history['epoch'] should be [1, ..., num_epochs], got {history.get('epoch')}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, list) and len(losses) == NUM_EPOCHS and all(math.isfinite(v) for v in losses),
           f"history['train_loss'] should hold one finite number per epoch ({NUM_EPOCHS}), got {losses}.")


@pytest.mark.softmax_train_manual
def test_train_manual_odd_sizes(student):
    gen = torch.Generator().manual_seed(_seed(14))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = _train_manual(student, X, y, torch.zeros(3, 4), torch.zeros(4), 0.1, 2, 5, grading_seed())
    expect_tensor(out["W"], "W after train_softmax with n=37, d=3, C=4, batches of 5", shape=(3, 4), finite=True)
    expect_tensor(out["b"], "b after train_softmax with n=37, d=3, C=4, batches of 5", shape=(4,), finite=True)
    history = out["history"]
    expect(isinstance(history, dict) and isinstance(history.get("train_loss"), list)
           and len(history["train_loss"]) == 2,
           "train_softmax(..., num_epochs=2, ...) should return a history with 2 train_loss entries.")


@pytest.mark.softmax_train_manual
def test_train_manual_follows_the_method(student):
    seed = grading_seed()
    gen = torch.Generator().manual_seed(_seed(17))
    X = torch.randn(TRACE_N, NUM_INPUTS, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (TRACE_N,), generator=gen)
    W0 = 0.01 * torch.randn(NUM_INPUTS, NUM_CLASSES, generator=gen)
    b0 = torch.zeros(NUM_CLASSES)
    out = _train_manual(student, X, y, W0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed)
    W, b, losses = replay_manual(X, y, out["W0"], out["b0"], TRACE_LR / LOSS_SCALE, TRACE_EPOCHS, TRACE_BATCH, seed)
    got = torch.cat([expect_tensor(out["W"], "W after train_softmax", shape=(NUM_INPUTS, NUM_CLASSES)).reshape(-1),
                     expect_tensor(out["b"], "b after train_softmax", shape=(NUM_CLASSES,)).reshape(-1)]).double()
    want = torch.cat([W.reshape(-1), b.reshape(-1)]).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {TRACE_N} examples (lr {TRACE_LR / LOSS_SCALE:g}, minibatches of {TRACE_BATCH}), W and "
           f"b differ by up to {worst:.3g} from what the loop described in the instructions gives from the same "
           f"start (tolerance {TOL_TRACE_PARAMS:g}). Check that you iterate over minibatches(X, y, batch_size), "
           f"take one step of sgd([W, b], lr, 1) per minibatch on the batch's mean cross-entropy (the mean is "
           f"already divided by the batch size), and nothing else changes W and b.")
    history = out["history"]
    reported = history.get("train_loss") if isinstance(history, dict) else None
    expect(isinstance(reported, list) and len(reported) == TRACE_EPOCHS,
           f"train_softmax should return a history whose 'train_loss' holds one number per epoch ({TRACE_EPOCHS}).")
    for epoch, (value, expected) in enumerate(zip(reported, losses), start=1):
        expect(value is not None and abs(value - expected) <= TOL_TRACE_LOSS * max(1.0, abs(expected)),
               f"In epoch {epoch}, train_softmax reports train_loss {value}, but the mean loss over that "
               f"epoch's examples is {expected:.6g} (relative tolerance {TOL_TRACE_LOSS:g}). With {TRACE_N} "
               f"examples in batches of {TRACE_BATCH} the last batch is smaller: weigh each batch's loss by its "
               f"size.")
