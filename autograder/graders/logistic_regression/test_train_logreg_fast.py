"""Checks of task `train_logreg_fast`."""
import math

import pytest
import torch

from autograder.judge.checks import expect, expect_tensor
from autograder.judge.training import expect_history_matches, expect_plain_sgd, fast_parts, replay_linear_fast

from .probes import probe_train_fast, probe_train_fast_traced
from .reference import (FAST_BATCH, FAST_EPOCHS, FAST_LR, FAST_TRACE_BATCH, FAST_TRACE_LR, FAST_TRACE_N,
                        TOL_TRACE_LOSS, TOL_TRACE_PARAMS, TRACE_EPOCHS, check_history, check_outcome, grading_seed,
                        make_data, make_trace_data)


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_logreg_fast`")
    logits, history = fast_parts(out, "train_logreg_fast", "logits")
    check_history(history, FAST_EPOCHS, "train_logreg_fast")
    check_outcome(logits, y_test, "train_logreg_fast", f"lr {FAST_LR}, batch size {FAST_BATCH}, {FAST_EPOCHS} epochs")


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(9000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_logreg_fast`")
    logits, history = fast_parts(out, "train_logreg_fast", "logits")
    created = out["created"]
    weight, bias = expect_plain_sgd(created, 3, FAST_TRACE_LR, "train_logreg_fast")
    net, losses = replay_linear_fast(X, y.float().reshape(-1, 1), weight, bias, torch.nn.BCEWithLogitsLoss(),
                                     FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed)
    with torch.no_grad():
        want = net(X_eval).double()
    got = expect_tensor(logits, "the trained net's logits for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's logits differ by up to {worst:.3g} from what the loop of the "
           f"instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, targets), batch_size, shuffle=True, generator=generator), "
           f"nn.BCEWithLogitsLoss() with its default mean, gradients cleared before each backward(), one "
           f"optimizer.step() per batch.")
    expect_history_matches(history, losses, TRACE_EPOCHS, "train_logreg_fast",
                           "the mean loss over that epoch's examples", TOL_TRACE_LOSS)
