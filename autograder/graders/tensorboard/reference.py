"""The judge's side of tensorboard: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import math
import os
import tempfile

import shutil
import torch

from autograder.judge.checks import expect, expect_close, fail


LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-6

HIST_RTOL, HIST_ATOL = 1e-5, 1e-6

MAX_LIVE_GRAPHS = 4

NUM_EPOCHS = 3

BATCH_SIZE = 30

MOMENTUM = 0.5


def grading_seed():
    """Seed of the graders' data and initial weights (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base):
    return base + 1000 * grading_seed()


class RunFiles:
    """The files of a student's run directory, unpacked into a directory of the judging process."""

    def __init__(self, files):
        self.root = tempfile.mkdtemp(prefix="judged-run-")
        for rel, data in files.items():
            path = os.path.normpath(os.path.join(self.root, rel))
            if not path.startswith(self.root + os.sep):
                fail("Your run directory holds a file outside itself; log only below the writer's log_dir.")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(bytes(data.numpy().tobytes()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.root, ignore_errors=True)

    def path(self, run="."):
        return os.path.join(self.root, run)


def regression_data(seed):
    """Lesson-01 regression data: 200 training and 100 validation samples."""
    from course.datasets import make_regression

    X, y = make_regression(torch.tensor([2.0, -3.4]), 4.2, 300, noise=0.01, seed=seed)
    return X[:200], y[:200], X[200:], y[200:]


def _batches(X, y):
    """Fixed batches (a list, so every pass sees the same order); the last one is smaller."""
    return [(X[i:i + BATCH_SIZE], y[i:i + BATCH_SIZE]) for i in range(0, len(X), BATCH_SIZE)]


def _net_for(state, ignore=None):
    """nn.Linear(2, 1), or for a BatchNorm state the net of train_logged; ``ignore`` replays a wrong use of
    the modes: "eval" ignores net.eval() (validation in training mode), "train" ignores net.train() once
    the net has been put in eval mode (training continues in eval mode)."""
    from torch import nn

    class ModeNet(nn.Sequential):
        def train(self, mode=True):
            if (not mode and ignore == "eval") or (mode and ignore == "train" and getattr(self, "evaluated", False)):
                return self
            if not mode:
                self.evaluated = True
            return super().train(mode)

    net = ModeNet(nn.BatchNorm1d(2), nn.Linear(2, 1)) if "0.running_mean" in state else nn.Linear(2, 1)
    net.load_state_dict(state)
    return net


def rerun(X_train, y_train, X_valid, y_valid, state, lr, num_epochs, momentum=0.0, valid=True, ignore=None,
           loss_fn=None):
    """The reference run: course.trainer.fit on the same batches and initial weights (mean squared error
    unless another ``loss_fn`` is given)."""
    from torch import nn

    from course.trainer import fit

    net = _net_for(state, ignore)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    history = fit(net, loss_fn or nn.MSELoss(), optimizer, _batches(X_train, y_train), num_epochs,
                  valid_iter=_batches(X_valid, y_valid) if valid else None, progress=False)
    return history, {k: v.detach().clone() for k, v in net.state_dict().items()}


def check_curve(curves, name, epochs, values, where, how):
    """One curve: present, one point per step, steps = epochs, values close to ``values``."""
    if name not in curves:
        found = ", ".join(sorted(curves)) or "none"
        fail(f"{where}: the curve `{name}` is missing (curves found: {found}). {how}")
    points = curves[name]
    steps = [step for step, _ in points]
    if len(points) > 1 and len(set(steps)) == 1:
        fail(f"{where}: all {len(points)} points of `{name}` are at step {steps[0]}: pass "
             f"global_step=epoch so that each epoch gets its own point.")
    if len(set(steps)) != len(steps):
        fail(f"{where}: `{name}` has more than one value at the same step (steps {steps}); "
             f"log exactly one value per epoch.")
    if steps != list(epochs):
        fail(f"{where}: `{name}` has points at steps {steps}, expected one point at each epoch "
             f"{list(epochs)} (global_step=epoch, the epoch as the history records it).")
    got = [value for _, value in points]
    if not all(math.isfinite(v) for v in got):
        fail(f"{where}: `{name}` holds inf or NaN values: {got}.")
    expect_close(torch.tensor(got, dtype=torch.float64), torch.tensor(list(values), dtype=torch.float64),
                 f"{where}: the values of `{name}`", rtol=LOSS_RTOL, atol=LOSS_ATOL)

HUBER_DELTA = 1.0             # train_logged's loss_fn: a Huber loss, so that a loop's own MSE trains otherwise

CALLER_TAG = "caller/after"   # what the probes log with the writer after the student's function returns


def expect_writer_kept_open(run, out, where):
    """The caller's own event, logged after the student's function returned, must be in the event file its
    writer opened: a closed SummaryWriter starts a new event file when it is used again."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for name in out["first"]:
        if "tfevents" in name and os.path.isfile(run.path(name)):
            accumulator = EventAccumulator(run.path(name))
            accumulator.Reload()
            tags.update(accumulator.Tags()["scalars"])
    expect(CALLER_TAG in tags,
           f"{where}: your function closed the writer it was given (what the caller logged with it afterwards "
           f"went to a new event file). The writer belongs to the caller, who may log more to it and closes it "
           f"when done: do not call writer.close() (or use it in a `with` block) inside the function.")


def _curves(run):
    """The scalar curves of a run, without the caller's own event."""
    from course.events import scalar_curves

    curves = scalar_curves(run.path())
    curves.pop(CALLER_TAG, None)
    return curves

# What each kind of curve in the read_scalars layout is, in the student's terms.
CURVE_KINDS = {
    "top": "curves written with add_scalar into log_dir itself",
    "scalars": "curves written with add_scalars (their event files are in sub-directories of the writer's "
               "directory, one per key)",
    "run": "curves of a run in a sub-directory of log_dir",
    "nested": "curves in a sub-directory of a sub-directory (add_scalars inside a run's directory)",
}
