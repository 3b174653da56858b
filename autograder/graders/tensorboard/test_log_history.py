"""Checks of task `log_history`."""
import pytest

from autograder.judge.checks import expect

from .probes import probe_log_history
from .reference import CALLER_TAG, RunFiles, check_curve, _curves, expect_writer_kept_open


@pytest.mark.log_history
def test_log_history_curves(student):
    history = {"epoch": [1, 2, 3, 4], "train_loss": [2.5, 1.25, 0.625, 0.3125],
               "valid_loss": [2.75, 1.5, 0.875, 0.4375]}
    out = student.probe(probe_log_history, history, CALLER_TAG, label="`log_history`")
    where = "log_history with a 4-epoch history"
    with RunFiles(out["files"]) as run:
        expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    how = ("Log history['train_loss'] as `loss/train` and history['valid_loss'] as `loss/valid` "
           "(two add_scalar tags, or add_scalars('loss', {'train': ..., 'valid': ...}, epoch)).")
    check_curve(curves, "loss/train", history["epoch"], history["train_loss"], where, how)
    check_curve(curves, "loss/valid", history["epoch"], history["valid_loss"], where, how)


@pytest.mark.log_history
def test_log_history_without_valid(student):
    history = {"epoch": [5, 6, 7], "train_loss": [0.5, 0.25, 0.125]}
    out = student.probe(probe_log_history, history, CALLER_TAG, label="`log_history`")
    where = "log_history with a history of epochs 5, 6, 7 and no 'valid_loss'"
    with RunFiles(out["files"]) as run:
        curves = _curves(run)
    how = "Log history['train_loss'] as `loss/train`."
    check_curve(curves, "loss/train", history["epoch"], history["train_loss"], where, how)
    extra = sorted(name for name in curves if name != "loss/train")
    expect(not extra, f"{where}: only `loss/train` should be logged, but the run also has {extra}.")
