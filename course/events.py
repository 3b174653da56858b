"""TensorBoard event files: a ``fit`` callback that writes loss curves, and readers that get them back.

Writing: ``TensorBoardCallback(writer)``, which ``fit(..., callbacks=[...])`` calls after every epoch, so
training code never needs to know about TensorBoard.

Reading: ``scalar_curves`` (the curves of one run by name), ``read_histograms`` and ``read_hparams`` use
TensorBoard's own ``EventAccumulator`` on every directory of a run that holds event files
(``add_scalars`` and ``add_hparams`` write into sub-directories of the writer's directory).

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


class TensorBoardCallback:
    """A ``fit`` callback: writes each epoch's record as scalars ("loss/train", ...) at global_step = epoch."""

    def __init__(self, writer, names=None):
        self.writer = writer
        self.names = CURVE_NAMES if names is None else names

    def __call__(self, epoch, record):
        """Called by ``fit`` after each epoch with record {"epoch", "train_loss", ...} (floats)."""
        for key, value in record.items():
            if key != "epoch" and key in self.names and value is not None:
                self.writer.add_scalar(self.names[key], float(value), global_step=int(epoch))


# ---------------------------------------------------------------------------------------------- reading

def event_dirs(log_dir):
    """Sorted paths (relative to ``log_dir``, "." for itself) of the directories holding event files."""
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


def scalar_curves(log_dir):
    """Scalar curves of one run by name: {name: [(step, value), ...]} sorted by step.

    ``add_scalar("loss/train", ...)`` and ``add_scalars("loss", {"train": ...})`` both give "loss/train";
    event files in other sub-directories keep their path: "<sub-directory>/<tag>".
    """
    named = {}
    for run in event_dirs(log_dir):
        accumulator = _accumulator(os.path.join(log_dir, run))
        for tag in accumulator.Tags()["scalars"]:
            prefix = tag.replace("/", "_") + "_"
            if run == ".":
                name = tag
            elif os.sep not in run and run.startswith(prefix) and len(run) > len(prefix):
                name = f"{tag}/{run[len(prefix):]}"
            else:
                name = f"{run.replace(os.sep, '/')}/{tag}"
            named.setdefault(name, []).extend((event.step, float(event.value))
                                              for event in accumulator.Scalars(tag))
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
