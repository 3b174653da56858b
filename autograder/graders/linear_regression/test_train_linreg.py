"""Checks of task `train_linreg`."""
import math

import pytest
import torch

from autograder.judge.checks import expect, fail
from autograder.judge.training import expect_follows_manual, expect_trained_in_place, expect_uses_its_arguments

from .probes import probe_train_linreg, standins
from .reference import (MANUAL_BATCH, MANUAL_EPOCHS, MANUAL_LR, PIECES, PROBE_GRADS, TOL_B, TOL_LOSS, TOL_TRACE_LOSS,
                        TOL_TRACE_PARAMS, TOL_W, TRACE_BATCH, TRACE_EPOCHS, TRACE_LR, TRACE_N, TRUE_B, TRUE_W, TWIST,
                        check_history, grading_seed, make_data, make_trace_data)


def _traced_manual(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, TRACE_N)
    gen = torch.Generator().manual_seed(4000 + seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=gen), torch.zeros(1)
    out = student.probe(probe_train_linreg, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_linreg`")
    return X, y, w0, b0, seed, out


@pytest.mark.train_linreg
def test_train_linreg_recovers_parameters(student):
    seed = grading_seed()
    X, y, _, _ = make_data(seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=torch.Generator().manual_seed(4500 + seed)), torch.zeros(1)
    out = student.probe(probe_train_linreg, X, y, w0, b0, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_linreg`")
    w, b = (t.double() for t in expect_trained_in_place(out, w0, b0, PROBE_GRADS, "train_linreg"))
    check_history(out["history"], MANUAL_EPOCHS, "train_linreg", TOL_LOSS)
    if not torch.isfinite(w).all():
        fail("w became inf or NaN during training.")
    # the net given to train_linreg reads its features scaled and shifts its predictions (``standins``)
    w_err = (w.reshape(-1) * TWIST["scale"].double().reshape(-1) - TRUE_W).abs().max().item()
    b_err = abs(b.reshape(-1)[0].item() + TWIST["shift"] - TRUE_B)
    expect(w_err <= TOL_W and b_err <= TOL_B,
           f"After {MANUAL_EPOCHS} epochs (lr {MANUAL_LR}, batch size {MANUAL_BATCH}) on data made with known "
           f"parameters, the model trained (the net given to train_linreg, with your w and b) is off from them by "
           f"up to {max(w_err, b_err):.3g}; a correct loop gets within {TOL_W:g} (tolerance).")


@pytest.mark.train_linreg
def test_train_linreg_uses_its_arguments(student):
    _, _, _, _, _, out = _traced_manual(student)
    batches = TRACE_EPOCHS * math.ceil(TRACE_N / TRACE_BATCH)
    setting = f"{TRACE_EPOCHS} epochs over {TRACE_N} examples in minibatches of {TRACE_BATCH}: {batches} minibatches"
    expect_uses_its_arguments(out["calls"], batches, setting, "train_linreg",
                              why=": later lessons pass other models and update rules")


@pytest.mark.train_linreg
def test_train_linreg_follows_the_method(student):
    X, y, w0, b0, seed, out = _traced_manual(student)
    expect_follows_manual(out, standins, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, TWIST,
                          "train_linreg", (TOL_TRACE_PARAMS, TOL_TRACE_LOSS), "the per-example losses")
