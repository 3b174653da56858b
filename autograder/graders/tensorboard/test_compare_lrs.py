"""Checks of task `compare_lrs`."""
import math
import os

import pytest
import torch

from autograder.judge.checks import expect, expect_close

from .probes import probe_compare_lrs
from .reference import BATCH_SIZE, LOSS_ATOL, LOSS_RTOL, RunFiles, check_curve, regression_data, rerun, _seed


def initial_state(seed):
    gen = torch.Generator().manual_seed(seed)
    return {"weight": 0.1 * torch.randn(1, 2, generator=gen), "bias": 0.1 * torch.randn(1, generator=gen)}


@pytest.mark.compare_lrs
def test_compare_lrs_runs(student):
    X_train, y_train, X_valid, y_valid = regression_data(seed=_seed(5))
    state, lrs, num_epochs = initial_state(_seed(6)), [0.01, 0.1], 2
    out = student.probe(probe_compare_lrs, X_train, y_train, X_valid, y_valid, state, lrs, num_epochs,
                        BATCH_SIZE, label="`compare_lrs`")
    where = f"compare_lrs with lrs={lrs}"
    before, after = out["threads"]
    expect(after <= before,
           f"{where}: {after - before} thread(s) more were running when compare_lrs returned than when it "
           f"was called: a SummaryWriter that is still open keeps one, and its events may not be on disk yet. Close every "
           f"writer you open (writer.close(), or `with SummaryWriter(...) as writer:`).")
    results = out["results"]
    expect("pairs" in results, f"{where}: should return a dict {{lr: final validation loss}}, "
                               f"but it returned a {results.get('type')}.")
    returned = {}
    for key, value in results["pairs"]:
        expect(isinstance(key, float) and isinstance(value, float),
               f"{where}: the returned dict should map each lr (a float) to a float, found {key}: {value}.")
        returned[key] = value
    expect(sorted(returned) == sorted(lrs), f"{where}: the returned dict has the keys {sorted(returned)}, "
                                            f"expected one per learning rate: {lrs}.")

    from course.events import read_hparams, scalar_curves

    with RunFiles(out["files"]) as runs:
        present = sorted(d for d in os.listdir(runs.root) if os.path.isdir(runs.path(d)))
        for lr in lrs:
            expected, _ = rerun(X_train, y_train, X_valid, y_valid, state, lr, num_epochs)
            expect_close(returned[lr], expected["valid_loss"][-1],
                         f"{where}: the returned final validation loss of lr={lr} (each run trains a fresh "
                         f"make_net() with SGD at its own lr for num_epochs epochs)", rtol=LOSS_RTOL,
                         atol=LOSS_ATOL)
            run = f"lr_{lr}"
            expect(run in present, f"{where}: no run directory `{run}` in log_dir (found: {present}); "
                                   f"write each run to os.path.join(log_dir, f'lr_{{lr}}').")
            curves = scalar_curves(runs.path(run))
            how = "Log each run's curves with that run's own writer."
            check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], f"{where}, run {run}",
                         how)
            check_curve(curves, "loss/valid", expected["epoch"], expected["valid_loss"], f"{where}, run {run}",
                         how)
            hparams = read_hparams(runs.path(run))
            logged = [values.get("lr") for values in hparams.values() if "lr" in values]
            expect(logged, f"{where}, run {run}: no hyper-parameter `lr` recorded "
                           f"(writer.add_hparams({{'lr': lr}}, {{'hparam/valid_loss': ...}}, run_name='.')).")
            expect(all(isinstance(v, float) and math.isclose(v, lr, rel_tol=1e-9) for v in logged),
                   f"{where}, run {run}: the recorded hyper-parameter lr is {logged}, expected {lr} "
                   f"(tolerance rel 1e-9).")
            metric = [points for name, points in curves.items() if name.endswith("hparam/valid_loss")]
            expect(metric, f"{where}, run {run}: the metric `hparam/valid_loss` is missing from add_hparams.")
            expect_close(metric[0][-1][1], expected["valid_loss"][-1],
                         f"{where}, run {run}: the metric hparam/valid_loss", rtol=LOSS_RTOL, atol=LOSS_ATOL)
