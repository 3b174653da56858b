"""Checks of task `train_logged`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail

from .probes import probe_train_logged
from .reference import (BATCH_SIZE, CALLER_TAG, HUBER_DELTA, LOSS_ATOL, LOSS_RTOL, MAX_LIVE_GRAPHS, MOMENTUM,
                        NUM_EPOCHS, RunFiles, _batches, check_curve, _curves, expect_writer_kept_open,
                        regression_data, rerun, _seed)


def _same_run(out, expected, expected_state):
    """Whether the returned history and the trained state are those of a replay (loss tolerances)."""
    try:
        for key, value in expected_state.items():
            if not torch.allclose(out["state"][key].double(), value.double(), rtol=LOSS_RTOL, atol=LOSS_ATOL):
                return False
        for key in [k for k in ("train_loss", "valid_loss") if k in expected]:
            got = torch.tensor(out["history"][key], dtype=torch.float64)
            if not torch.allclose(got, torch.tensor(expected[key], dtype=torch.float64), rtol=LOSS_RTOL,
                                  atol=LOSS_ATOL):
                return False
    except (KeyError, TypeError, ValueError, RuntimeError):
        return False
    return True


def _given_loss():
    """The loss_fn the train_logged probe passes (the judge's copy, for its replays)."""
    from torch import nn

    return nn.HuberLoss(delta=HUBER_DELTA)


def _expect_modes(out, data, state, lr, expected, expected_state, where):
    """Training in training mode, validation in eval mode: batch normalisation computes differently in the two
    modes, so a run that differs from the replay is replayed here with each wrong use of the modes."""
    if _same_run(out, expected, expected_state):
        return
    for ignore, message in (
            ("eval", "measure the validation loss in eval mode (net.eval()) and without gradients (with "
                     "torch.no_grad()): your validation ran with the model in training mode."),
            ("train", "training batches ran with the model in eval mode: switch back with net.train() before "
                      "training (after validating, the model is still in eval mode).")):
        replay, replay_state = rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, ignore=ignore, loss_fn=_given_loss())
        expect(not _same_run(out, replay, replay_state), f"{where}: {message}")


def _check_training_use(out, data, state, lr, expected, expected_state, where, valid=True):
    if not _same_run(out, expected, expected_state):
        # the given loss_fn is a Huber loss: a loop that computes its own mean squared error trains otherwise
        replay, replay_state = rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, valid=valid)
        expect(not _same_run(out, replay, replay_state),
               f"{where}: your loop trained with the mean squared error, not with the loss_fn it was given "
               f"(here a Huber loss): compute every loss with loss_fn(net(X), y).")
    expect(out["max_live"] <= MAX_LIVE_GRAPHS,
           f"{where}: your code kept the autograd graphs of up to {out['max_live']} batches alive at once "
           f"(at most {MAX_LIVE_GRAPHS} expected): a loss tensor is kept (summed or stored) after its "
           f"backward pass. Keep only numbers: loss.item().")
    for key, value in expected_state.items():
        if key not in out["state"]:
            fail(f"{where}: the model has no `{key}` after training: train the `net` you are given.")
        expect_close(out["state"][key], value,
                     f"{where}: the model's `{key}` after training (train `net` with the optimizer you are "
                     f"given, one step per batch)", rtol=LOSS_RTOL, atol=LOSS_ATOL)


def _check_history(history, expected, keys, where):
    expect("__type__" not in history,
           f"{where}: should return the history dict, but it returned a {history.get('__type__')}.")
    for key in keys:
        expect(key in history, f"{where}: the returned history has no key {key!r} "
                               f"(keys: {sorted(history)}).")
        values = history[key]
        expect(isinstance(values, list) and len(values) == NUM_EPOCHS,
               f"{where}: history[{key!r}] should be a list of {NUM_EPOCHS} values, one per epoch.")
        for value in values:
            if isinstance(value, dict) and value.get("type") == "tensor":
                fail(f"{where}: history[{key!r}] holds tensors: store Python floats (loss.item()).")
            expect(isinstance(value, (int, float)) and not isinstance(value, bool),
                   f"{where}: history[{key!r}] should hold numbers, found {value}.")
            if key != "epoch":
                expect(isinstance(value, float), f"{where}: history[{key!r}] should hold floats, found {value}.")
    expect_close(torch.tensor(history["epoch"], dtype=torch.float64),
                 torch.tensor(expected["epoch"], dtype=torch.float64), f"{where}: history['epoch']",
                 rtol=0, atol=0)
    for key in keys:
        if key == "epoch":
            continue
        expect_close(torch.tensor(history[key], dtype=torch.float64),
                     torch.tensor(expected[key], dtype=torch.float64),
                     f"{where}: history[{key!r}] (train loss: the mean of the epoch's batch losses while "
                     f"training, weighted by batch size; valid loss: the same mean over valid_iter after the "
                     f"epoch)", rtol=LOSS_RTOL, atol=LOSS_ATOL)


def _initial_norm_state(seed):
    """Initial state of train_logged's net, BatchNorm1d(2) then Linear(2, 1) (see ``probe_train_logged``)."""
    gen = torch.Generator().manual_seed(seed)
    return {"0.weight": 1.0 + 0.1 * torch.randn(2, generator=gen), "0.bias": 0.1 * torch.randn(2, generator=gen),
            "0.running_mean": torch.zeros(2), "0.running_var": torch.ones(2),
            "0.num_batches_tracked": torch.tensor(0), "1.weight": 0.1 * torch.randn(1, 2, generator=gen),
            "1.bias": 0.1 * torch.randn(1, generator=gen)}


@pytest.mark.train_logged
def test_train_logged_run(student):
    data = regression_data(seed=_seed(3))
    state, lr = _initial_norm_state(_seed(4)), 0.05
    expected, expected_state = rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, loss_fn=_given_loss())
    out = student.probe(probe_train_logged, *data, state, lr, MOMENTUM, NUM_EPOCHS, BATCH_SIZE, CALLER_TAG, HUBER_DELTA,
                        label="`train_logged`")
    num_batches = len(_batches(data[0], data[1]))
    where = (f"train_logged (BatchNorm1d(2) then Linear(2, 1) on regression data, a Huber loss, SGD lr={lr} "
             f"momentum={MOMENTUM}, {NUM_EPOCHS} epochs of {num_batches} batches, the last one smaller)")
    with RunFiles(out["files"]) as run:
        expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    _expect_modes(out, data, state, lr, expected, expected_state, where)
    _check_training_use(out, data, state, lr, expected, expected_state, where)
    _check_history(out["history"], expected, ("epoch", "train_loss", "valid_loss"), where)
    how = "Log `loss/train` and `loss/valid` after every epoch with the writer you are given."
    check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], where, how)
    check_curve(curves, "loss/valid", expected["epoch"], expected["valid_loss"], where, how)


@pytest.mark.train_logged
def test_train_logged_without_valid(student):
    X_train, y_train, X_valid, y_valid = regression_data(seed=_seed(13))
    state, lr = _initial_norm_state(_seed(14)), 0.1
    data = (X_train, y_train, X_valid, y_valid)
    expected, expected_state = rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, valid=False, loss_fn=_given_loss())
    out = student.probe(probe_train_logged, *data, state, lr, MOMENTUM, NUM_EPOCHS, BATCH_SIZE, CALLER_TAG,
                        HUBER_DELTA, with_valid=False, label="`train_logged`")
    where = (f"train_logged without valid_iter (valid_iter=None, BatchNorm1d(2) then Linear(2, 1), a Huber loss, "
             f"SGD lr={lr} momentum={MOMENTUM}, {NUM_EPOCHS} epochs)")
    with RunFiles(out["files"]) as run:
        expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    _check_training_use(out, data, state, lr, expected, expected_state, where, valid=False)
    history = out["history"]
    _check_history(history, expected, ("epoch", "train_loss"), where)
    expect(history.get("valid_loss") in (None, []),
           f"{where}: the history should have no 'valid_loss' without valid_iter.")
    check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], where,
                 "Log `loss/train` after every epoch with the writer you are given.")
    expect("loss/valid" not in curves, f"{where}: no `loss/valid` curve should be logged without valid_iter.")
