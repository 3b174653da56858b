"""TensorBoard logging kept apart from training, and readers for the event files it writes.

Writing: ``log_history`` (loss curves from a ``fit`` history), ``log_parameters`` (histograms of weights
and gradients) and ``TensorBoardCallback``, which ``fit(..., callbacks=[...])`` calls after every epoch,
so training code never needs to know about TensorBoard.

Reading: ``read_scalars``, ``read_histograms``, ``read_hparams`` and ``scalar_curves`` use TensorBoard's
own ``EventAccumulator`` on every directory of a run that holds event files (``add_scalars`` and
``add_hparams`` write into sub-directories of the writer's directory).

Vocabulary: a *run directory* is the ``log_dir`` of one ``SummaryWriter``; ``tensorboard --logdir runs``
shows every run directory found below ``runs``.
"""
import os

EVENT_FILE_MARK = "tfevents"

# Names of the curves that ``fit``'s history keys become in TensorBoard.
CURVE_NAMES = {
    "train_loss": "loss/train",
    "valid_loss": "loss/valid",
    "valid_metric": "metric/valid",
}


def log_history(writer, history, names=None):
    """Write every curve of a ``fit`` history as scalars, one point per epoch at global_step = epoch.

    writer: a ``SummaryWriter``; history: dict of lists with key "epoch" (e.g. [1, 2, 3]) and value keys
    such as "train_loss"; names: history key -> tag (default ``CURVE_NAMES``; unknown keys are skipped).
    """
    names = CURVE_NAMES if names is None else names
    for i, epoch in enumerate(history["epoch"]):
        _log_record(writer, epoch, {key: values[i] for key, values in history.items() if key != "epoch"},
                    names)


def _log_record(writer, epoch, record, names):
    """Write one epoch's values (record: history key -> float) at global_step = epoch."""
    for key, value in record.items():
        if key in names and value is not None:
            writer.add_scalar(names[key], float(value), global_step=int(epoch))


def log_parameters(writer, net, step):
    """Write a histogram of every parameter ("weights/<name>") and of its gradient ("grads/<name>").

    net: an ``nn.Module``; step: the global step (an int). Parameters whose ``.grad`` is None (before the
    first backward pass) get no gradient histogram.
    """
    for name, param in net.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), global_step=step)
        if param.grad is not None:
            writer.add_histogram(f"grads/{name}", param.grad.detach(), global_step=step)


class TensorBoardCallback:
    """A ``fit`` callback: logs each epoch's record with ``writer`` (and parameter histograms of ``net``)."""

    def __init__(self, writer, net=None, names=None):
        self.writer = writer
        self.net = net
        self.names = CURVE_NAMES if names is None else names

    def __call__(self, epoch, record):
        """Called by ``fit`` after each epoch with record {"epoch", "train_loss", ...}."""
        _log_record(self.writer, epoch, {k: v for k, v in record.items() if k != "epoch"}, self.names)
        if self.net is not None:
            log_parameters(self.writer, self.net, epoch)


# ---------------------------------------------------------------------------------------------- reading

def event_dirs(log_dir):
    """Sorted run paths (relative to ``log_dir``, "." for itself) of the directories holding event files."""
    found = []
    for root, _, files in os.walk(log_dir):
        if any(EVENT_FILE_MARK in name for name in files):
            found.append(os.path.relpath(root, log_dir))
    return sorted(found)


def _accumulator(path):
    """A loaded ``EventAccumulator`` for one directory, keeping every event (no sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    size_guidance = {"scalars": 0, "histograms": 0, "tensors": 0, "compressedHistograms": 0}
    accumulator = EventAccumulator(path, size_guidance=size_guidance)
    accumulator.Reload()
    return accumulator


def read_scalars(log_dir):
    """Every scalar curve below ``log_dir``: {(run, tag): [(step, value), ...]} sorted by step.

    run is the directory of the event file relative to ``log_dir`` ("." for ``log_dir`` itself), so the
    curves of ``add_scalars("loss", {"train": ...})`` appear under run "loss_train" with tag "loss".
    """
    curves = {}
    for run in event_dirs(log_dir):
        accumulator = _accumulator(os.path.join(log_dir, run))
        for tag in accumulator.Tags()["scalars"]:
            points = [(event.step, float(event.value)) for event in accumulator.Scalars(tag)]
            curves[(run, tag)] = sorted(points, key=lambda point: point[0])
    return curves


def scalar_curves(log_dir):
    """Scalar curves of one run by name: {name: [(step, value), ...]}, whichever way they were written.

    ``add_scalar("loss/train", ...)`` and ``add_scalars("loss", {"train": ...})`` both give "loss/train";
    other sub-directories keep their path: "<run>/<tag>".
    """
    named = {}
    for (run, tag), points in read_scalars(log_dir).items():
        prefix = tag.replace("/", "_") + "_"
        if run == ".":
            name = tag
        elif os.sep not in run and run.startswith(prefix) and len(run) > len(prefix):
            name = f"{tag}/{run[len(prefix):]}"
        else:
            name = f"{run.replace(os.sep, '/')}/{tag}"
        named.setdefault(name, []).extend(points)
    return {name: sorted(points, key=lambda point: point[0]) for name, points in named.items()}


def read_histograms(log_dir):
    """Every histogram below ``log_dir``: {(run, tag): [(step, stats), ...]} sorted by step.

    stats: {"min", "max", "num", "sum", "sum_squares"} of the logged values (floats).
    """
    found = {}
    for run in event_dirs(log_dir):
        accumulator = _accumulator(os.path.join(log_dir, run))
        for tag in accumulator.Tags()["histograms"]:
            points = []
            for event in accumulator.Histograms(tag):
                h = event.histogram_value
                stats = {"min": h.min, "max": h.max, "num": h.num, "sum": h.sum,
                         "sum_squares": h.sum_squares}
                points.append((event.step, {k: float(v) for k, v in stats.items()}))
            found[(run, tag)] = sorted(points, key=lambda point: point[0])
    return found


def read_hparams(log_dir):
    """Hyper-parameters recorded with ``add_hparams`` below ``log_dir``: {run: {name: value}}."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    found = {}
    for run in event_dirs(log_dir):
        accumulator = _accumulator(os.path.join(log_dir, run))
        try:
            contents = accumulator.PluginTagToContent("hparams")
        except KeyError:  # no add_hparams in this directory
            continue
        for content in contents.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.WhichOneof("data") != "session_start_info":
                continue
            values = {}
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                values[name] = getattr(value, kind) if kind else None
            found.setdefault(run, {}).update(values)
    return found
