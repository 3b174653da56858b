"""Checks of task `train_logreg`."""
import math

import pytest
import torch

from autograder.judge.training import expect_follows_manual, expect_trained_in_place, expect_uses_its_arguments

from .probes import probe_train_logreg, standins
from .reference import (MANUAL_BATCH, MANUAL_EPOCHS, MANUAL_LR, PIECES, PROBE_GRADS, TOL_TRACE_LOSS, TOL_TRACE_PARAMS,
                        TRACE_BATCH, TRACE_EPOCHS, TRACE_LR, TRACE_N, TWIST, check_history, check_outcome,
                        grading_seed, make_data, make_trace_data)


def _traced_manual(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, TRACE_N)
    gen = torch.Generator().manual_seed(8000 + seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=gen), torch.zeros(1)
    out = student.probe(probe_train_logreg, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_logreg`")
    return X, y, w0, b0, seed, out


@pytest.mark.train_logreg
def test_train_logreg_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=torch.Generator().manual_seed(4500 + seed)), torch.zeros(1)
    out = student.probe(probe_train_logreg, X, y, w0, b0, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_logreg`")
    w, b = expect_trained_in_place(out, w0, b0, PROBE_GRADS, "train_logreg")
    check_history(out["history"], MANUAL_EPOCHS, "train_logreg")
    net, _, _ = standins(TWIST)
    with torch.no_grad():
        logits = net(X_test, w, b)      # the model trained: the net given to train_logreg, with w and b
    check_outcome(logits, y_test, "train_logreg", f"lr {MANUAL_LR}, batch size {MANUAL_BATCH}, {MANUAL_EPOCHS} epochs")


@pytest.mark.train_logreg
def test_train_logreg_uses_its_arguments(student):
    _, _, _, _, _, out = _traced_manual(student)
    batches = TRACE_EPOCHS * math.ceil(TRACE_N / TRACE_BATCH)
    setting = f"{TRACE_EPOCHS} epochs over {TRACE_N} examples in minibatches of {TRACE_BATCH}: {batches} minibatches"
    expect_uses_its_arguments(out["calls"], batches, setting, "train_logreg")


@pytest.mark.train_logreg
def test_train_logreg_follows_the_method(student):
    X, y, w0, b0, seed, out = _traced_manual(student)
    expect_follows_manual(out, standins, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, TWIST,
                          "train_logreg", (TOL_TRACE_PARAMS, TOL_TRACE_LOSS), "the per-example losses of the logits")
