"""Checks of task `softmax_train_fast`."""
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_tensor, fail

from .probes import probe_fast_device, probe_net, probe_train_fast, probe_train_fast_traced
from .reference import (BATCH_SIZE, FAST_TRACE_BATCH, FAST_TRACE_EPOCHS, FAST_TRACE_LR, LR, NUM_CLASSES, NUM_EPOCHS,
                        NUM_INPUTS, TOL_TRACE_LOSS, TOL_TRACE_PARAMS, TRACE_N, TRAIN_SEED, expect_outcome, score,
                        _seed, grading_seed, training_data)


def fast_outcome(student, seed=None):
    """Train the student's fast pipeline on the grader's blobs; returns (accuracy, loss), probe output.

    ``seed`` is the grading seed (default: COURSE_GRADING_SEED): the data and the training seed follow it.
    """
    seed = grading_seed() if seed is None else seed
    X_train, y_train, X_test, y_test = training_data(seed)
    out = student.probe(probe_train_fast, X_train, y_train, NUM_CLASSES, LR, NUM_EPOCHS, BATCH_SIZE,
                        TRAIN_SEED + seed, X_test, torch.device("cpu"), label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    expect_tensor(out["O"], "the trained net's output for held-out inputs of shape (400, 3)",
                  shape=(len(X_test), NUM_CLASSES))
    return score(out["O"], y_test), out


@pytest.mark.softmax_train_fast
def test_train_fast_outcome(student):
    (accuracy, loss), out = fast_outcome(student)
    expect_outcome(accuracy, loss, "The net trained by train_softmax_fast (its outputs read as logits)")
    history = out["history"]
    if not isinstance(history, dict):
        fail(f"train_softmax_fast should return (net, history) with the history dict of fit, got {history}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, list) and len(losses) == NUM_EPOCHS,
           f"The history of train_softmax_fast should hold one train_loss per epoch ({NUM_EPOCHS}).")


@pytest.mark.softmax_train_fast
def test_train_fast_odd_sizes(student):
    gen = torch.Generator().manual_seed(_seed(15))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = student.probe(probe_net, 3, 4, X, label="`softmax_net`")
    if "error" in out:
        fail(out["error"] + ".")
    if isinstance(out["O"], str):
        fail(f"softmax_net(3, 4) applied to X of shape (37, 3) should return a tensor, got {out['O']}.")
    expect_tensor(out["O"], "softmax_net(3, 4) applied to X of shape (37, 3)", shape=(37, 4))
    n_params = sum(p.numel() for p in out["trainable"])
    expect(n_params == 3 * 4 + 4,
           f"softmax_net(3, 4) should have 16 trainable parameters (a weight per input and class, a bias per "
           f"class), but it has {n_params}.")
    out = student.probe(probe_train_fast, X, y, 4, 0.1, 2, 5, grading_seed(), X, None,
                        label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    expect_tensor(out["O"], "the output of the net trained by train_softmax_fast with n=37, d=3, C=4, "
                            "batches of 5", shape=(37, 4), finite=True)


@pytest.mark.softmax_train_fast
def test_train_fast_follows_the_device(student):
    gen = torch.Generator().manual_seed(_seed(16))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = student.probe(probe_fast_device, X, y, label="`train_softmax_fast`")
    seen = out["seen"]
    if not seen:
        return  # the notebook trains without fit: the device cannot be checked this way
    expect(seen.get("net") == ["meta"] and seen.get("batch") == ["meta"],
           f"train_softmax_fast(..., device=device) should put the model and every batch on that device: "
           f"checked with a device other than the CPU, the model's parameters were on {seen.get('net')} and "
           f"the batches given to fit on {seen.get('batch')}. Note that X.to(device) returns a new tensor "
           f"(keep the result), while net.to(device) moves the module itself.")


@pytest.mark.softmax_train_fast
def test_train_fast_follows_the_method(student):
    gen = torch.Generator().manual_seed(_seed(18))
    X = torch.randn(TRACE_N, NUM_INPUTS, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (TRACE_N,), generator=gen)
    X_eval = torch.randn(20, NUM_INPUTS, generator=gen)
    out = student.probe(probe_train_fast_traced, X, y, NUM_CLASSES, FAST_TRACE_LR, FAST_TRACE_EPOCHS,
                        FAST_TRACE_BATCH, grading_seed(), X_eval, label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    created = out["created"]
    expect(len(created) >= 1, "train_softmax_fast should train with torch.optim.SGD(net.parameters(), lr=lr); no "
                              "torch.optim.SGD was created.")
    start, opts = created[-1]["start"], created[-1]
    weights = [t for t in start if tuple(t.shape) == (NUM_CLASSES, NUM_INPUTS)]
    biases = [t for t in start if tuple(t.shape) == (NUM_CLASSES,)]
    expect(len(start) == 2 and len(weights) == 1 and len(biases) == 1,
           f"train_softmax_fast should optimise the weight and bias of one nn.Linear({NUM_INPUTS}, {NUM_CLASSES}); "
           f"the optimizer was given tensors of shapes {[tuple(t.shape) for t in start]}.")
    expect(opts["lr"] == FAST_TRACE_LR and opts["momentum"] == 0 and opts["weight_decay"] == 0,
           f"train_softmax_fast should use torch.optim.SGD(net.parameters(), lr=lr) with the lr it is given "
           f"({FAST_TRACE_LR}) and nothing else; it used lr={opts['lr']:g}, momentum={opts['momentum']:g}, "
           f"weight_decay={opts['weight_decay']:g}.")
    W = weights[0].T.clone().requires_grad_()
    b = biases[0].clone().requires_grad_()
    losses = []
    for _ in range(FAST_TRACE_EPOCHS):   # one minibatch per epoch: plain gradient descent
        loss = F.cross_entropy(X @ W + b, y)
        loss.backward()
        with torch.no_grad():
            for p in (W, b):
                p -= FAST_TRACE_LR * p.grad
                p.grad.zero_()
        losses.append(loss.item())
    O = expect_tensor(out["O"], "the trained net's output for 20 inputs", shape=(20, NUM_CLASSES))
    got = torch.log_softmax(O.double(), dim=1)
    want = torch.log_softmax((X_eval @ W + b).detach().double(), dim=1)
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {FAST_TRACE_EPOCHS} epochs on {TRACE_N} examples in one batch (lr {FAST_TRACE_LR}), the trained "
           f"net's log-probabilities differ by up to {worst:.3g} from {FAST_TRACE_EPOCHS} steps of gradient descent on "
           f"the mean cross-entropy of its logits from the same start (tolerance {TOL_TRACE_PARAMS:g}). Check: the "
           f"model outputs logits (no softmax), nn.CrossEntropyLoss() with its default mean, gradients cleared "
           f"before each backward(), one optimizer.step() per batch.")
    reported = out.get("train_loss")
    expect(isinstance(reported, list) and len(reported) == FAST_TRACE_EPOCHS,
           f"The history of train_softmax_fast should hold one train_loss per epoch ({FAST_TRACE_EPOCHS}).")
    for epoch, (value, expected) in enumerate(zip(reported, losses), start=1):
        expect(abs(value - expected) <= TOL_TRACE_LOSS * max(1.0, abs(expected)),
               f"In epoch {epoch}, train_softmax_fast reports train_loss {value:.6g}, but the mean cross-entropy of "
               f"that epoch is {expected:.6g} (relative tolerance {TOL_TRACE_LOSS:g}).")
