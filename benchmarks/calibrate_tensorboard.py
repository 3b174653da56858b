"""Calibrate the tolerances of autograder/graders/tensorboard/: 20 seeds x 3 learning rates.

For each run (the graders' set-up: lesson-01 regression data, 200 training / 100 validation samples,
batches of 30 (the last ones of 20 and 10), 3 epochs of SGD with momentum 0.5 on nn.Linear(2, 1)) it measures:
- how far a plain training loop (batch-size-weighted mean of batch losses via .item(), validation on the
  same batches in eval mode without gradients) lands from ``course.trainer.fit`` (the graders' rerun):
  the correct-variant spread;
- how far the nearest wrong variants land: the last batch's loss logged instead of the epoch mean, and
  the unweighted mean of the batch losses;
- the most loss graphs alive at once, for a correct loop and for ``epoch_loss += loss``.
Prints min / median / max of each. Run: ``nice .venv/bin/python benchmarks/calibrate_tensorboard.py``.
"""
import statistics
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from autograder.sandbox.inside.probing import graph_counter  # noqa: E402
from lesson_graders import lesson  # noqa: E402

_graders = lesson("tensorboard")
BATCH_SIZE, MOMENTUM, NUM_EPOCHS = _graders.BATCH_SIZE, _graders.MOMENTUM, _graders.NUM_EPOCHS
batches, initial_state, regression_data, rerun = (_graders._batches, _graders.initial_state, _graders.regression_data,
                                                  _graders.rerun)

LIVE, mark = graph_counter()


def marked_mse(y_hat, y):
    return mark(F.mse_loss(y_hat, y))


def plain_loop(data, state, lr, keep_tensor=False, last_batch=False, unweighted=False):
    """A hand-written training loop; returns (train losses, valid losses, most graphs alive at once)."""
    X_train, y_train, X_valid, y_valid = data
    LIVE.update(now=0, max=0)
    net = nn.Linear(2, 1)
    net.load_state_dict(state)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    train, valid = [], []
    for _ in range(NUM_EPOCHS):
        net.train()
        losses, sizes, total = [], [], 0.0
        for X, y in batches(X_train, y_train):
            loss = marked_mse(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            sizes.append(len(X))
            if keep_tensor:
                total = total + loss
        del loss
        if last_batch:
            train.append(losses[-1])
        elif unweighted:
            train.append(sum(losses) / len(losses))
        else:
            train.append(sum(l * n for l, n in zip(losses, sizes)) / sum(sizes))
        del total
        net.eval()
        with torch.no_grad():
            v = [(F.mse_loss(net(X), y).item(), len(X)) for X, y in batches(X_valid, y_valid)]
        valid.append(sum(l * n for l, n in v) / sum(n for _, n in v))
    return train, valid, LIVE["max"]


def rel(a, b):
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def summary(name, values):
    print(f"{name:58s} min {min(values):.3g}  median {statistics.median(values):.3g}  max {max(values):.3g}")


def main():
    correct_diff, wrong_diff, unweighted_diff, live_ok, live_kept = [], [], [], [], []
    for seed in range(20):
        data = regression_data(seed=100 + seed)
        state = initial_state(200 + seed)
        for lr in (0.01, 0.05, 0.1):  # the learning rates the graders use
            expected, _ = rerun(*data, state, lr, NUM_EPOCHS, MOMENTUM)
            train, valid, live = plain_loop(data, state, lr)
            correct_diff.append(max(rel(train, expected["train_loss"]), rel(valid, expected["valid_loss"])))
            live_ok.append(live)
            train_w, _, _ = plain_loop(data, state, lr, last_batch=True)
            wrong_diff.append(rel(train_w, expected["train_loss"]))
            train_u, _, _ = plain_loop(data, state, lr, unweighted=True)
            unweighted_diff.append(rel(train_u, expected["train_loss"]))
            _, _, live_w = plain_loop(data, state, lr, keep_tensor=True)
            live_kept.append(live_w)
    print(f"{len(correct_diff)} runs, batches of {BATCH_SIZE}, {NUM_EPOCHS} epochs, momentum {MOMENTUM}")
    summary("correct loop vs fit: max relative difference", correct_diff)
    summary("last batch logged vs fit: max relative difference", wrong_diff)
    summary("unweighted mean of batch losses vs fit: max relative difference", unweighted_diff)
    summary("graphs alive at once, correct loop", live_ok)
    summary("graphs alive at once, epoch_loss += loss", live_kept)


if __name__ == "__main__":
    main()
