"""Lesson 02-tensorboard, finished: logging training to TensorBoard and reading it back.

``log_history`` (loss curves of a ``fit`` history), ``log_parameters`` (histograms of weights and
gradients), ``train_logged`` (``fit`` with its curves logged), ``compare_lrs`` (one closed run directory
per learning rate, with hparams) and ``read_scalars`` (every scalar curve below a directory).

The callback and the readers the lesson uses as tools live in ``course.events`` and are re-exported here.
"""
import os

from course.events import (CURVE_NAMES, EVENT_FILE_MARK, TensorBoardCallback, event_dirs,  # noqa: F401
                           read_hparams, read_histograms, scalar_curves)


def log_history(writer, history, names=None):
    """Write every curve of a ``fit`` history as scalars, one point per epoch at global_step = epoch.

    writer: a ``SummaryWriter``; history: dict of lists with key "epoch" (e.g. [1, 2, 3]) and value keys
    such as "train_loss"; names: history key -> tag (default ``CURVE_NAMES``; unknown keys are skipped).
    """
    names = CURVE_NAMES if names is None else names
    for i, epoch in enumerate(history["epoch"]):
        for key, values in history.items():
            if key != "epoch" and key in names and values[i] is not None:
                writer.add_scalar(names[key], float(values[i]), global_step=int(epoch))


def log_parameters(writer, net, step):
    """Write a histogram of every parameter ("weights/<name>") and of its gradient ("grads/<name>").

    net: an ``nn.Module``; step: the global step (an int). Parameters whose ``.grad`` is None (before the
    first backward pass) get no gradient histogram.
    """
    for name, param in net.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), global_step=step)
        if param.grad is not None:
            writer.add_histogram(f"grads/{name}", param.grad.detach(), global_step=step)


def train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=None):
    """``fit`` with loss/train (and loss/valid) logged after every epoch; returns the history."""
    from course.trainer import fit

    return fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=valid_iter,
               callbacks=[TensorBoardCallback(writer)], progress=False)


def compare_lrs(lrs, make_net, loss_fn, train_iter, valid_iter, num_epochs, log_dir):
    """Train a fresh ``make_net()`` per lr with SGD, logged to log_dir/lr_<lr>; returns {lr: final valid loss}."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    results = {}
    for lr in lrs:
        net = make_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        with SummaryWriter(os.path.join(log_dir, f"lr_{lr}")) as writer:
            history = train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=valid_iter)
            results[lr] = history["valid_loss"][-1]
            writer.add_hparams({"lr": lr}, {"hparam/valid_loss": results[lr]}, run_name=".")
    return results


def read_scalars(log_dir):
    """Every scalar curve below ``log_dir``: {(run, tag): [(step, value), ...]} sorted by step.

    run is the directory of the event file relative to ``log_dir`` ("." for ``log_dir`` itself), so the
    curves of ``add_scalars("loss", {"train": ...})`` appear under run "loss_train" with tag "loss".
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for root, _, files in os.walk(log_dir):
        if not any(EVENT_FILE_MARK in name for name in files):
            continue
        accumulator = EventAccumulator(root, size_guidance={"scalars": 0})
        accumulator.Reload()
        run = os.path.relpath(root, log_dir)
        for tag in accumulator.Tags()["scalars"]:
            points = [(int(event.step), float(event.value)) for event in accumulator.Scalars(tag)]
            curves[(run, tag)] = sorted(points, key=lambda point: point[0])
    return curves
