"""Checks of task `train_linreg_fast`."""
import math

import pytest
import torch

from autograder.judge.checks import expect, expect_tensor, fail
from autograder.judge.training import expect_history_matches, expect_plain_sgd, fast_parts, replay_linear_fast

from .probes import probe_train_fast, probe_train_fast_traced
from .reference import (FAST_BATCH, FAST_EPOCHS, FAST_LR, FAST_TRACE_BATCH, FAST_TRACE_LR, FAST_TRACE_N, N_TEST,
                        TOL_FAST_LOSS, TOL_PRED, TOL_TRACE_LOSS, TOL_TRACE_PARAMS, TRACE_EPOCHS, check_history,
                        grading_seed, make_data, make_trace_data)


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_predicts(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_linreg_fast`")
    y_hat, history = fast_parts(out, "train_linreg_fast", "y_hat")
    y_hat = expect_tensor(y_hat, f"net(X) for X of shape ({N_TEST}, 3)", shape=(N_TEST, 1))
    check_history(history, FAST_EPOCHS, "train_linreg_fast", TOL_FAST_LOSS)
    if not torch.isfinite(y_hat).all():
        fail("The trained net predicts inf or NaN: training diverged.")
    err = (y_hat.double() - y_test).abs().max().item()
    expect(err <= TOL_PRED,
           f"After {FAST_EPOCHS} epochs (lr {FAST_LR}, batch size {FAST_BATCH}) the trained net's predictions on "
           f"new inputs are off by up to {err:.3g}; a correct solution stays within {TOL_PRED:g} (tolerance). "
           f"Check the loss's reduction and that gradients are cleared every step.")


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(5000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_linreg_fast`")
    y_hat, history = fast_parts(out, "train_linreg_fast", "y_hat")
    created = out["created"]
    weight, bias = expect_plain_sgd(created, 3, FAST_TRACE_LR, "train_linreg_fast")
    net, losses = replay_linear_fast(X, y, weight, bias, torch.nn.MSELoss(), FAST_TRACE_LR, TRACE_EPOCHS,
                                     FAST_TRACE_BATCH, seed)
    with torch.no_grad():
        want = net(X_eval).double()
    got = expect_tensor(y_hat, "the trained net's predictions for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's predictions differ by up to {worst:.3g} from what the loop of "
           f"the instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, y), batch_size, shuffle=True, generator=generator), nn.MSELoss() "
           f"with its default mean, optimizer.zero_grad() before each backward(), one optimizer.step() per batch.")
    expect_history_matches(history, losses, TRACE_EPOCHS, "train_linreg_fast",
                           "the mean of nn.MSELoss over that epoch's examples", TOL_TRACE_LOSS)
