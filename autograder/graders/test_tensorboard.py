"""Graders of lesson 02-tensorboard: judged from the event files the student's code writes.

Every probe runs the student's function against a fresh run directory in the student's process and
returns the raw bytes of every file in it (uint8 tensors). The judging process writes those bytes to its
own temporary directory and reads them with TensorBoard's ``EventAccumulator`` (``course.events``),
so what the student's process reports about its own files plays no part in the verdict. Expected
values come from training that this process reruns itself with ``course.training.fit`` on the same data,
initial weights and batches. Probes return data only, never a verdict: whether a function closed the
writer it was given shows in the files (after it returns, the probe logs the tag ``caller/after`` with
that writer; a closed SummaryWriter starts a new event file when used again, so the tag must be in the
event file the writer opened, whose name the probe lists before the call); whether training and
validation ran in the right modes shows in the losses and the trained state (below).

Set-up: lesson-01 regression data, 200 training / 100 validation samples in batches of 30, so that the
last batch of each is smaller (20 and 10) and a mean that is not weighted by batch size shows.
``train_logged`` gets SGD with momentum 0.5 (so that code which ignores the optimizer it is given
shows), a Huber loss (delta 1; so that code which computes its own mean squared error instead of calling
the loss_fn it is given shows in the losses and the trained state, and is named when an MSE replay matches)
and a net BatchNorm1d(2) then Linear(2, 1): batch normalisation uses each batch's statistics (and
updates its running ones) in training mode and the running statistics in eval mode, so validating in
training mode, or training in eval mode after validating, changes the losses and the trained state; a
run that differs from the rerun is replayed with each of these two wrong uses of the modes, to say which.
``compare_lrs`` builds plain SGD itself, as its instructions say, on nn.Linear(2, 1). It runs with the
grader's own ``train_logged``, ``log_history`` and ``log_parameters`` in the notebook's namespace, so that a
mistake in one of those costs only its own task; each is deliberately not its task's answer, in ways that
change nothing for these runs (curves at steps 1, 2, ... rather than the history's epochs, no gradient
histograms, validation in training mode with gradients on: nn.Linear has no mode). The data and initial weights follow
COURSE_GRADING_SEED (default 0); graded under seeds 0..19, the reference never lost a point.

Tolerances and thresholds (benchmarks/calibrate_tensorboard.py: 20 seeds x the graders' 3 learning rates
0.01, 0.05, 0.1 = 60 runs of 3 epochs, 7 batches each, momentum 0.5):
- Losses, logged and returned: rtol=1e-4, atol=1e-6. With train_logged's batch-normalised net (the same
  20 seeds x 3 learning rates, replayed in-process): a hand-written loop matched fit exactly
  (60/60), the unweighted mean of the batch losses is off by 0.94% at least, validating in training mode
  by 6.9% at least, training in eval mode after validating by 10% at least (94, 690 and 1000 times the
  tolerance). With nn.Linear alone (compare_lrs), as calibrated: a hand-written loop (batch-size-weighted mean of
  ``loss.item()`` over the epoch's batches, validation likewise without gradients) matched the rerun
  exactly in 60/60 runs (max relative difference 0; event files add float32 rounding, <= 6e-8). The
  nearest wrong variants land far outside: the unweighted mean of the batch losses is off by 0.88% at
  least (median 4.5%), the last batch's loss instead of the epoch mean by 18.5% at least (median 95%),
  88 and 1850 times the tolerance.
- Graphs kept alive: the probe's loss function marks each loss graph. A correct loop keeps 2 alive at
  once in 60/60 runs (the current batch's loss, and the previous one until its name is rebound);
  ``epoch_loss += loss`` keeps all 7 of the epoch alive in 60/60 runs. Threshold: more than 4 fails.
- Histogram statistics (min, max, count, sum) of logged parameters: rtol=1e-5, atol=1e-6 (event files
  keep min/max of float32 values exactly and float64 sums).
- Writers left open: the threads of the probe's process as the kernel lists them (``/proc/self/task``, read
  with ``os.listdir`` bound before the student's code runs), after torch's and TensorBoard's own threads
  have started, counted before ``compare_lrs`` is called and when it returns (waiting up to 2 s for
  threads that were joined but are still ending in the kernel: without that wait, 1 of 20 seeds saw one):
  a SummaryWriter keeps a thread until ``close()`` joins it; ``flush()`` alone does not. Deterministic, unlike looking for missing
  events, which a background thread may or may not have written by then.
"""
import math
import os
import shutil
import tempfile

import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail
from autograder.judge.tasks import Task

ASSIGNMENT = "02-tensorboard"
TASKS = [
    Task("log_history", points=2, title="Loss curves of a history, one point per epoch"),
    Task("log_parameters", points=2, title="Histograms of weights and gradients"),
    Task("train_logged", points=3, title="A logged training run, without keeping graphs alive"),
    Task("compare_lrs", points=2, title="One closed run directory per learning rate, with hparams"),
    Task("read_scalars", points=1, title="Read every scalar curve of a run directory back"),
]

CONTRACT = {
    "log_history": {
        "history['train_loss'] as the curve loss/train": ["test_log_history_curves",
                                                          "test_log_history_without_valid"],
        "history['valid_loss'] as loss/valid, when the history has it": ["test_log_history_curves",
                                                                         "test_log_history_without_valid"],
        "one point per epoch at global_step = epoch, the epoch as recorded": ["test_log_history_curves",
                                                                              "test_log_history_without_valid"],
        "do not close the writer: it belongs to the caller": "test_log_history_curves",
        "write plain Python floats": "not enforced: an event file stores a float whatever number type is "
                                     "passed; the values read back are checked",
        "returns None": "not enforced: a returned value does no harm to the caller",
    },
    "log_parameters": {
        "a histogram weights/<name> of every parameter's values": "test_log_parameters_histograms",
        "a histogram grads/<name> of every gradient, only when param.grad is not None":
            "test_log_parameters_histograms",
        "names from net.named_parameters(), any nn.Module (conv and linear layers)":
            "test_log_parameters_histograms",
        "step: the global step of all these histograms": "test_log_parameters_histograms",
        "log detached values": "not enforced: add_histogram converts to NumPy, which never touches the "
                               "autograd graph, so detaching changes no outcome",
    },
    "train_logged": {
        "trains net exactly as fit does, with the loss_fn and optimizer given":
            ["test_train_logged_run", "test_train_logged_without_valid"],
        "training loss: the batch-size-weighted mean of the epoch's batch losses": "test_train_logged_run",
        "validation loss after the epoch, weighted mean, in eval mode": "test_train_logged_run",
        "validation without gradients (torch.no_grad())": "not enforced: with gradients on, validation gives the "
            "same losses, trained state and event files; a graph that is kept alive is what the live-graph count "
            "checks",
        "training in training mode": "test_train_logged_run",
        "loss/train and loss/valid logged at global_step = epoch with the writer given": "test_train_logged_run",
        "returns {'epoch', 'train_loss', 'valid_loss'}: lists of floats, one per epoch": "test_train_logged_run",
        "no 'valid_loss' and no loss/valid without valid_iter": "test_train_logged_without_valid",
        "no autograd graph kept alive (loss.item())": "test_train_logged_run",
        "the writer is not closed here": ["test_train_logged_run", "test_train_logged_without_valid"],
    },
    "compare_lrs": {
        "a fresh make_net() and torch.optim.SGD(net.parameters(), lr=lr) per lr": "test_compare_lrs_runs",
        "run directory os.path.join(log_dir, f'lr_{lr}') per lr": "test_compare_lrs_runs",
        "curves loss/train and loss/valid for num_epochs epochs in each run directory": "test_compare_lrs_runs",
        "add_hparams({'lr': lr}, {'hparam/valid_loss': final}, run_name='.')": "test_compare_lrs_runs",
        "every writer closed before returning": "test_compare_lrs_runs",
        "returns {lr: final validation loss} with float values": "test_compare_lrs_runs",
    },
    "read_scalars": {
        "every scalar curve below log_dir, sub-directories included": "test_read_scalars_finds_every_curve",
        "keys (run, tag): run relative to log_dir, '.' for log_dir itself": "test_read_scalars_finds_every_curve",
        "(int step, float value) pairs": "test_read_scalars_finds_every_curve",
        "sorted by step": "test_read_scalars_finds_every_curve",
        "event files are the files whose names contain tfevents": "not enforced: TensorBoard's reader skips "
                                                                  "other files itself, so no outcome depends on it",
    },
}

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


# --------------------------------------------------------------------------------- judging helpers
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


def _regression_data(seed):
    """Lesson-01 regression data: 200 training and 100 validation samples."""
    from course.datasets import make_regression

    X, y = make_regression(torch.tensor([2.0, -3.4]), 4.2, 300, noise=0.01, seed=seed)
    return X[:200], y[:200], X[200:], y[200:]


def _batches(X, y):
    """Fixed batches (a list, so every pass sees the same order); the last one is smaller."""
    return [(X[i:i + BATCH_SIZE], y[i:i + BATCH_SIZE]) for i in range(0, len(X), BATCH_SIZE)]


def _initial_state(seed):
    gen = torch.Generator().manual_seed(seed)
    return {"weight": 0.1 * torch.randn(1, 2, generator=gen), "bias": 0.1 * torch.randn(1, generator=gen)}


def _initial_norm_state(seed):
    """Initial state of train_logged's net, BatchNorm1d(2) then Linear(2, 1) (see ``probe_train_logged``)."""
    gen = torch.Generator().manual_seed(seed)
    return {"0.weight": 1.0 + 0.1 * torch.randn(2, generator=gen), "0.bias": 0.1 * torch.randn(2, generator=gen),
            "0.running_mean": torch.zeros(2), "0.running_var": torch.ones(2),
            "0.num_batches_tracked": torch.tensor(0), "1.weight": 0.1 * torch.randn(1, 2, generator=gen),
            "1.bias": 0.1 * torch.randn(1, generator=gen)}


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


def _rerun(X_train, y_train, X_valid, y_valid, state, lr, num_epochs, momentum=0.0, valid=True, ignore=None,
           loss_fn=None):
    """The reference run: course.training.fit on the same batches and initial weights (mean squared error
    unless another ``loss_fn`` is given)."""
    from torch import nn

    from course.training import fit

    net = _net_for(state, ignore)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    history = fit(net, loss_fn or nn.MSELoss(), optimizer, _batches(X_train, y_train), num_epochs,
                  valid_iter=_batches(X_valid, y_valid) if valid else None, progress=False)
    return history, {k: v.detach().clone() for k, v in net.state_dict().items()}


def _check_curve(curves, name, epochs, values, where, how):
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


def _given_loss():
    """The loss_fn the train_logged probe passes (the judge's copy, for its replays)."""
    from torch import nn

    return nn.HuberLoss(delta=HUBER_DELTA)


CALLER_TAG = "caller/after"   # what the probes log with the writer after the student's function returns


def _expect_writer_kept_open(run, out, where):
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


# ------------------------------------------------------------------------------------------ probes
def probe_log_history(ns, history, caller_tag):
    """Student's log_history on a fresh writer, which the caller then uses once more and closes; returns the
    run directory's files and the names of the files there before the call."""
    import os
    import tempfile

    import torch
    from torch.utils.tensorboard import SummaryWriter

    log_history = ns.require("log_history")
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    first = sorted(os.listdir(run_dir))
    try:
        log_history(writer, history)
        writer.add_scalar(caller_tag, 1.0, global_step=0)
    finally:
        writer.close()
    files = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                data = handle.read()
            files[os.path.relpath(path, run_dir)] = torch.tensor(list(data), dtype=torch.uint8)
    return {"files": files, "first": first}


def probe_log_parameters(ns, stages):
    """Student's log_parameters at steps 0, 1, 2 with the given parameters and gradients; returns files."""
    import os
    import tempfile
    import traceback

    import torch
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter

    log_parameters = ns.require("log_parameters")
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(8, 2))
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    try:
        for step, (params, grads) in enumerate(stages):
            with torch.no_grad():
                for key, tensor in net.named_parameters():
                    tensor.copy_(params[key])
                    tensor.grad = None if grads is None else grads[key].clone()
            try:
                log_parameters(writer, net, step)
            except NotImplementedError as exc:
                frames = traceback.extract_tb(exc.__traceback__)
                if grads is None and frames and "tensorboard" in frames[-1].filename:
                    return {"none_grad_error": f"{type(exc).__name__}: {str(exc)[:200]}", "step": step}
                raise
    finally:
        writer.close()
    files = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                data = handle.read()
            files[os.path.relpath(path, run_dir)] = torch.tensor(list(data), dtype=torch.uint8)
    return {"files": files}


def probe_train_logged(ns, X_train, y_train, X_valid, y_valid, state, lr, momentum, num_epochs, batch_size,
                       caller_tag, huber_delta, with_valid=True):
    """Student's train_logged on a fresh writer (used once more by the caller afterwards, then closed), with a
    Huber loss function (not the mean squared error a loop might compute on its own) that counts live loss
    graphs, on BatchNorm1d(2) then Linear(2, 1): batch normalisation
    computes differently in training and in eval mode, so the modes show in the losses and the state."""
    import os
    import tempfile

    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter

    live = {"now": 0, "max": 0}

    class Mark:
        """Lives exactly as long as the autograd graph node that holds it."""

        def __init__(self):
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])

        def __del__(self):
            live["now"] -= 1

    class Marked(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark = Mark()
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    def loss_fn(y_hat, y):
        return Marked.apply(F.huber_loss(y_hat, y, delta=huber_delta))

    train_iter = [(X_train[i:i + batch_size], y_train[i:i + batch_size]) for i in range(0, len(X_train), batch_size)]
    valid_iter = [(X_valid[i:i + batch_size], y_valid[i:i + batch_size]) for i in range(0, len(X_valid), batch_size)]
    train_logged = ns.require("train_logged")
    net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
    net.load_state_dict(state)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    first = sorted(os.listdir(run_dir))
    try:
        history = train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer,
                               valid_iter=valid_iter if with_valid else None)
        writer.add_scalar(caller_tag, 1.0, global_step=0)
    finally:
        writer.close()

    def number(value):
        if isinstance(value, torch.Tensor):
            return {"type": "tensor"}
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if isinstance(value, float) else int(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            return {"type": type(value).__name__}

    if isinstance(history, dict):
        returned = {str(k): ([number(v) for v in vals] if isinstance(vals, (list, tuple)) else
                             {"type": type(vals).__name__}) for k, vals in history.items()}
    else:
        returned = {"__type__": type(history).__name__}
    files = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                data = handle.read()
            files[os.path.relpath(path, run_dir)] = torch.tensor(list(data), dtype=torch.uint8)
    state_after = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return {"files": files, "first": first, "history": returned, "max_live": live["max"], "state": state_after}


def probe_compare_lrs(ns, X_train, y_train, X_valid, y_valid, state, lrs, num_epochs, batch_size):
    """Student's compare_lrs, with correct stand-ins for the notebook's train_logged, log_history and
    log_parameters; files are read as soon as it returns, with the number of the process's threads (as the
    kernel lists them) before and after the call: an open SummaryWriter keeps a thread."""
    import os
    import tempfile

    import torch
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter

    import time

    listdir, sleep, monotonic = os.listdir, time.sleep, time.monotonic   # bound before the student's code runs
    x = torch.randn(256, 256, requires_grad=True)
    (x @ x).sum().backward()     # torch's worker threads and TensorBoard's started before counting
    SummaryWriter(tempfile.mkdtemp(prefix="settle-")).close()
    threads_before = len(listdir("/proc/self/task"))

    def make_net():
        net = nn.Linear(2, 1)
        net.load_state_dict(state)
        return net

    # The grader's versions of the other tasks' functions, so that this task is judged on its own. Each is
    # deliberately not its task's answer, in a way that changes nothing for nn.Linear runs from fit's
    # histories: curves at steps 1, 2, ... (not the history's epochs), no gradient histograms, validation
    # in training mode with gradients on.
    def log_history(writer, history):
        for step, value in enumerate(history["train_loss"], start=1):
            writer.add_scalar("loss/train", value, step)
        for step, value in enumerate(history.get("valid_loss", []), start=1):
            writer.add_scalar("loss/valid", value, step)

    def log_parameters(writer, net, step):
        for key, tensor in net.state_dict().items():
            writer.add_histogram("weights/" + key, tensor, step)

    def train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=None):
        history = {"epoch": [], "train_loss": []}
        net.train()
        for epoch in range(1, num_epochs + 1):
            sums = []
            for X, y in train_iter:
                loss = loss_fn(net(X), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                sums.append((loss.item() * len(X), len(X)))
            history["epoch"].append(epoch)
            history["train_loss"].append(sum(a for a, _ in sums) / sum(n for _, n in sums))
            if valid_iter is not None:
                sums = [(loss_fn(net(X), y).item() * len(X), len(X)) for X, y in valid_iter]
                history.setdefault("valid_loss", []).append(sum(a for a, _ in sums) / sum(n for _, n in sums))
        log_history(writer, history)
        return history

    compare_lrs = ns.require("compare_lrs")
    train_iter = [(X_train[i:i + batch_size], y_train[i:i + batch_size]) for i in range(0, len(X_train), batch_size)]
    valid_iter = [(X_valid[i:i + batch_size], y_valid[i:i + batch_size]) for i in range(0, len(X_valid), batch_size)]
    log_dir = tempfile.mkdtemp(prefix="runs-")
    stand_ins = {"train_logged": train_logged, "log_history": log_history, "log_parameters": log_parameters}
    saved = {name: ns.globals[name] for name in stand_ins if name in ns.globals}
    ns.globals.update(stand_ins)
    try:
        results = compare_lrs(list(lrs), make_net, nn.MSELoss(), train_iter, valid_iter, num_epochs, log_dir)
    finally:
        for name in stand_ins:
            if name in saved:
                ns.globals[name] = saved[name]
            else:
                ns.globals.pop(name, None)
    files = {}
    for root, _, names in os.walk(log_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                data = handle.read()
            files[os.path.relpath(path, log_dir)] = torch.tensor(list(data), dtype=torch.uint8)
    # a joined thread may still be ending in the kernel for a moment: a writer left open never ends
    deadline = monotonic() + 2.0
    while len(listdir("/proc/self/task")) > threads_before and monotonic() < deadline:
        sleep(0.01)
    threads_after = len(listdir("/proc/self/task"))
    if isinstance(results, dict):
        pairs = []
        for key, value in results.items():
            if isinstance(value, torch.Tensor):
                value = float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
            try:
                pairs.append([float(key), float(value)])
            except (TypeError, ValueError):
                pairs.append([repr(key)[:40], repr(value)[:40]])
        returned = {"pairs": pairs}
    else:
        returned = {"type": type(results).__name__}
    return {"files": files, "results": returned, "threads": [threads_before, threads_after]}


def probe_read_scalars(ns, layout):
    """Write the runs described by ``layout`` here, then return what the student's read_scalars finds: each
    curve's run and tag as returned, and each point as the classes of its two items (their MRO's names) and
    their values as floats."""
    import os
    import tempfile

    from torch.utils.tensorboard import SummaryWriter

    def number(item):
        try:
            return float(item)
        except (TypeError, ValueError):
            return None

    read_scalars = ns.require("read_scalars")
    log_dir = tempfile.mkdtemp(prefix="runs-")
    for run, entries in layout:
        with SummaryWriter(os.path.join(log_dir, run)) as writer:
            for kind, tag, step, value in entries:
                if kind == "scalar":
                    writer.add_scalar(tag, value, global_step=step)
                else:
                    writer.add_scalars(tag, value, global_step=step)
    found = read_scalars(log_dir)
    if not isinstance(found, dict):
        return {"type": type(found).__name__}
    out = []
    for key, points in found.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            return {"bad_key": f"a {type(key).__name__}" if not isinstance(key, tuple) else
                    f"a tuple of {len(key)} item(s), not two strings"}
        run, tag = key
        try:
            pairs = list(points)
        except TypeError:
            return {"bad_points": type(points).__name__}
        checked = []
        for point in pairs:
            if not (isinstance(point, (tuple, list)) and len(point) == 2):
                return {"bad_points": f"{type(point).__name__} of length {len(point)}"
                        if isinstance(point, (tuple, list)) else type(point).__name__}
            checked.append([[kind.__name__ for kind in type(item).__mro__] for item in point]
                           + [number(item) for item in point])
        out.append([run, tag, checked])
    return {"curves": out}


# --------------------------------------------------------------------------------------- graders
@pytest.mark.log_history
def test_log_history_curves(student):
    history = {"epoch": [1, 2, 3, 4], "train_loss": [2.5, 1.25, 0.625, 0.3125],
               "valid_loss": [2.75, 1.5, 0.875, 0.4375]}
    out = student.probe(probe_log_history, history, CALLER_TAG, label="`log_history`")
    where = "log_history with a 4-epoch history"
    with RunFiles(out["files"]) as run:
        _expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    how = ("Log history['train_loss'] as `loss/train` and history['valid_loss'] as `loss/valid` "
           "(two add_scalar tags, or add_scalars('loss', {'train': ..., 'valid': ...}, epoch)).")
    _check_curve(curves, "loss/train", history["epoch"], history["train_loss"], where, how)
    _check_curve(curves, "loss/valid", history["epoch"], history["valid_loss"], where, how)


@pytest.mark.log_history
def test_log_history_without_valid(student):
    history = {"epoch": [5, 6, 7], "train_loss": [0.5, 0.25, 0.125]}
    out = student.probe(probe_log_history, history, CALLER_TAG, label="`log_history`")
    where = "log_history with a history of epochs 5, 6, 7 and no 'valid_loss'"
    with RunFiles(out["files"]) as run:
        curves = _curves(run)
    how = "Log history['train_loss'] as `loss/train`."
    _check_curve(curves, "loss/train", history["epoch"], history["train_loss"], where, how)
    extra = sorted(name for name in curves if name != "loss/train")
    expect(not extra, f"{where}: only `loss/train` should be logged, but the run also has {extra}.")


def _parameter_stages():
    """Parameters and gradients of a Conv2d(1, 2, 2)-Flatten-Linear(8, 2) net at steps 0 (no grads), 1, 2."""
    gen = torch.Generator().manual_seed(_seed(2))
    shapes = {"0.weight": (2, 1, 2, 2), "0.bias": (2,), "2.weight": (2, 8), "2.bias": (2,)}
    stages = []
    for step in range(3):
        params = {name: torch.randn(*shape, generator=gen) for name, shape in shapes.items()}
        grads = None if step == 0 else {name: 0.1 * torch.randn(*shape, generator=gen)
                                         for name, shape in shapes.items()}
        stages.append([params, grads])
    return stages


@pytest.mark.log_parameters
def test_log_parameters_histograms(student):
    stages = _parameter_stages()
    out = student.probe(probe_log_parameters, stages, label="`log_parameters`")
    where = "log_parameters on a Conv2d(1, 2, 2)-Flatten-Linear(8, 2) network at steps 0, 1, 2"
    if "none_grad_error" in out:
        fail(f"{where}: at step {out['step']}, before any backward pass, every param.grad is None, and "
             f"add_histogram raised {out['none_grad_error']}. Log a gradient only when param.grad is not None.")
    from course.events import read_histograms

    with RunFiles(out["files"]) as run:
        histograms = read_histograms(run.path())
    by_tag = {}
    for (subdir, tag), points in histograms.items():
        by_tag.setdefault(tag, []).extend(points)
    for name in stages[0][0]:
        for kind, steps in (("weights", [0, 1, 2]), ("grads", [1, 2])):
            tag = f"{kind}/{name}"
            if tag not in by_tag:
                found = ", ".join(sorted(by_tag)) or "none"
                fail(f"{where}: the histogram `{tag}` is missing (histograms found: {found}).")
            got_steps = sorted(step for step, _ in by_tag[tag])
            if got_steps != steps:
                note = " (no gradient histogram while .grad is None)" if kind == "grads" else ""
                fail(f"{where}: `{tag}` has histograms at steps {got_steps}, expected exactly one at each "
                     f"of steps {steps}{note}.")
            for step, stats in sorted(by_tag[tag], key=lambda point: point[0]):
                params, grads = stages[step]
                values = (params if kind == "weights" else grads)[name].to(torch.float64)
                expected = torch.tensor([values.min(), values.max(), values.numel(), values.sum()])
                got = torch.tensor([stats["min"], stats["max"], stats["num"], stats["sum"]],
                                   dtype=torch.float64)
                what = "parameter's values" if kind == "weights" else "parameter's gradient"
                expect_close(got, expected, f"{where}: the histogram `{tag}` at step {step} does not "
                             f"describe the {what} (its min, max, count and sum)",
                             rtol=HIST_RTOL, atol=HIST_ATOL)


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


def _check_training_use(out, data, state, lr, expected, expected_state, where, valid=True):
    if not _same_run(out, expected, expected_state):
        # the given loss_fn is a Huber loss: a loop that computes its own mean squared error trains otherwise
        replay, replay_state = _rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, valid=valid)
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
        replay, replay_state = _rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, ignore=ignore, loss_fn=_given_loss())
        expect(not _same_run(out, replay, replay_state), f"{where}: {message}")


@pytest.mark.train_logged
def test_train_logged_run(student):
    data = _regression_data(seed=_seed(3))
    state, lr = _initial_norm_state(_seed(4)), 0.05
    expected, expected_state = _rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, loss_fn=_given_loss())
    out = student.probe(probe_train_logged, *data, state, lr, MOMENTUM, NUM_EPOCHS, BATCH_SIZE, CALLER_TAG, HUBER_DELTA,
                        label="`train_logged`")
    num_batches = len(_batches(data[0], data[1]))
    where = (f"train_logged (BatchNorm1d(2) then Linear(2, 1) on regression data, a Huber loss, SGD lr={lr} "
             f"momentum={MOMENTUM}, {NUM_EPOCHS} epochs of {num_batches} batches, the last one smaller)")
    with RunFiles(out["files"]) as run:
        _expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    _expect_modes(out, data, state, lr, expected, expected_state, where)
    _check_training_use(out, data, state, lr, expected, expected_state, where)
    _check_history(out["history"], expected, ("epoch", "train_loss", "valid_loss"), where)
    how = "Log `loss/train` and `loss/valid` after every epoch with the writer you are given."
    _check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], where, how)
    _check_curve(curves, "loss/valid", expected["epoch"], expected["valid_loss"], where, how)


@pytest.mark.train_logged
def test_train_logged_without_valid(student):
    X_train, y_train, X_valid, y_valid = _regression_data(seed=_seed(13))
    state, lr = _initial_norm_state(_seed(14)), 0.1
    data = (X_train, y_train, X_valid, y_valid)
    expected, expected_state = _rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM, valid=False, loss_fn=_given_loss())
    out = student.probe(probe_train_logged, *data, state, lr, MOMENTUM, NUM_EPOCHS, BATCH_SIZE, CALLER_TAG,
                        HUBER_DELTA, with_valid=False, label="`train_logged`")
    where = (f"train_logged without valid_iter (valid_iter=None, BatchNorm1d(2) then Linear(2, 1), a Huber loss, "
             f"SGD lr={lr} momentum={MOMENTUM}, {NUM_EPOCHS} epochs)")
    with RunFiles(out["files"]) as run:
        _expect_writer_kept_open(run, out, where)
        curves = _curves(run)
    _check_training_use(out, data, state, lr, expected, expected_state, where, valid=False)
    history = out["history"]
    _check_history(history, expected, ("epoch", "train_loss"), where)
    expect(history.get("valid_loss") in (None, []),
           f"{where}: the history should have no 'valid_loss' without valid_iter.")
    _check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], where,
                 "Log `loss/train` after every epoch with the writer you are given.")
    expect("loss/valid" not in curves, f"{where}: no `loss/valid` curve should be logged without valid_iter.")


@pytest.mark.compare_lrs
def test_compare_lrs_runs(student):
    X_train, y_train, X_valid, y_valid = _regression_data(seed=_seed(5))
    state, lrs, num_epochs = _initial_state(_seed(6)), [0.01, 0.1], 2
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
            expected, _ = _rerun(X_train, y_train, X_valid, y_valid, state, lr, num_epochs)
            expect_close(returned[lr], expected["valid_loss"][-1],
                         f"{where}: the returned final validation loss of lr={lr} (each run trains a fresh "
                         f"make_net() with SGD at its own lr for num_epochs epochs)", rtol=LOSS_RTOL,
                         atol=LOSS_ATOL)
            run = f"lr_{lr}"
            expect(run in present, f"{where}: no run directory `{run}` in log_dir (found: {present}); "
                                   f"write each run to os.path.join(log_dir, f'lr_{{lr}}').")
            curves = scalar_curves(runs.path(run))
            how = "Log each run's curves with that run's own writer."
            _check_curve(curves, "loss/train", expected["epoch"], expected["train_loss"], f"{where}, run {run}",
                         how)
            _check_curve(curves, "loss/valid", expected["epoch"], expected["valid_loss"], f"{where}, run {run}",
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


# What each kind of curve in the read_scalars layout is, in the student's terms.
CURVE_KINDS = {
    "top": "curves written with add_scalar into log_dir itself",
    "scalars": "curves written with add_scalars (their event files are in sub-directories of the writer's "
               "directory, one per key)",
    "run": "curves of a run in a sub-directory of log_dir",
    "nested": "curves in a sub-directory of a sub-directory (add_scalars inside a run's directory)",
}


def _layout():
    """Runs the read_scalars probe writes, (run, [(kind, tag, step, value)]), and what they should read as:
    {(run, tag): (kind of curve, [(step, value), ...] sorted by step)}."""
    layout = [
        [".", [["scalar", "acc/valid", step, 0.5 + 0.125 * step] for step in range(3)]
         + [["scalar", "acc/train", step, 0.25 * step] for step in (3, 1, 2)]
         + [["scalars", "loss", step, {"train": 2.0 / (step + 1), "valid": 3.0 / (step + 1)}]
            for step in range(3)]],
        ["lr_0.1", [["scalar", "loss/train", step, 1.5 - 0.25 * step] for step in range(1, 4)]
         + [["scalars", "cmp", 7, {"a": 0.75}]]],
    ]
    expected = {
        (".", "acc/valid"): ("top", [(s, 0.5 + 0.125 * s) for s in range(3)]),
        (".", "acc/train"): ("top", [(s, 0.25 * s) for s in (1, 2, 3)]),
        ("loss_train", "loss"): ("scalars", [(s, 2.0 / (s + 1)) for s in range(3)]),
        ("loss_valid", "loss"): ("scalars", [(s, 3.0 / (s + 1)) for s in range(3)]),
        ("lr_0.1", "loss/train"): ("run", [(s, 1.5 - 0.25 * s) for s in range(1, 4)]),
        (os.path.join("lr_0.1", "cmp_a"), "cmp"): ("nested", [(7, 0.75)]),
    }
    return layout, expected


@pytest.mark.read_scalars
def test_read_scalars_finds_every_curve(student):
    layout, expected = _layout()
    out = student.probe(probe_read_scalars, layout, label="`read_scalars`")
    where = "read_scalars on a log_dir holding curves of add_scalar, add_scalars and a run in a sub-directory"
    expect("type" not in out, f"{where}: should return a dict, but it returned a {out.get('type')}.")
    expect("bad_key" not in out, f"{where}: keys should be (run, tag) pairs of two strings, found a key that "
                                 f"is {out.get('bad_key')}.")
    expect("bad_points" not in out,
           f"{where}: each curve should be a list of (step, value) pairs, found an entry that is "
           f"{out.get('bad_points')}.")
    for _, _, points in out["curves"]:
        for step_kinds, value_kinds, _, _ in points:
            expect("int" in step_kinds and "bool" not in step_kinds and "float" in value_kinds,
                   f"{where}: each point should be a pair (int step, float value), found a pair of "
                   f"({step_kinds[0]}, {value_kinds[0]}): use (event.step, event.value) of each ScalarEvent.")
    absolute = [run for run, _, _ in out["curves"] if os.path.isabs(run)]
    expect(not absolute, f"{where}: runs should be paths relative to log_dir (os.path.relpath(directory, "
                         f"log_dir), '.' for log_dir itself), but {len(absolute)} key(s) hold a full path.")
    found = {}
    for run, tag, points in out["curves"]:
        found[(os.path.normpath(run) if run else ".", tag)] = [(int(step), value) for _, _, step, value in points]
    missing = [key for key in expected if key not in found]
    if missing:
        kinds = sorted({expected[key][0] for key in missing}, key=list(CURVE_KINDS).index)
        fail(f"{where}: {len(missing)} of the {len(expected)} curves were not found: the "
             f"{'; the '.join(CURVE_KINDS[k] for k in kinds)}. TensorBoard reads every directory below log_dir "
             f"that holds event files; so must read_scalars.")
    extra = [key for key in found if key not in expected]
    expect(not extra, f"{where}: {len(extra)} key(s) name no curve below log_dir: the run is the directory of "
                      f"the event files relative to log_dir ('.' for log_dir itself, e.g. 'lr_0.03/loss_train'), "
                      f"the tag is the tag as logged.")
    for key, (_, points) in expected.items():
        steps = [step for step, _ in found[key]]
        want = [step for step, _ in points]
        expect(steps == want,
               f"{where}: one curve has points at steps {steps}, expected {want}: one point per logged value, "
               f"sorted by step (events are stored in the order they were written, which need not be step order).")
        expect_close(torch.tensor([value for _, value in found[key]], dtype=torch.float64),
                     torch.tensor([value for _, value in points], dtype=torch.float64),
                     f"{where}: the values read back", rtol=1e-6, atol=1e-7)
