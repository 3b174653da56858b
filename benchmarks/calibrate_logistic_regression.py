"""Calibrate the training thresholds of the 04-logistic-regression graders.

Runs the reference training functions (course.logistic_regression) on the graders' data and budgets for
20+ seeds and prints min / median / max of the judged quantities (held-out accuracy, held-out binary
cross-entropy of the logits, last training loss), then the same for known-wrong variants, which must land
clearly on the other side of the thresholds; and the margins of the method checks (replayed loops).
Usage: python benchmarks/calibrate_logistic_regression.py [num_seeds]
"""
import os
import statistics
import sys

import torch
from torch import nn

from lesson_graders import lesson  # noqa: E402

G = lesson("logistic_regression")
from course.datasets import minibatches
from course.linear_regression import linreg, sgd
from course.logistic_regression import bce_with_logits, sigmoid, train_logreg, train_logreg_fast
from course.trainer import fit


def summary(name, values):
    values = [float(v) for v in values]
    print(f"  {name:>16}: min {min(values):.4g}  median {statistics.median(values):.4g}  max {max(values):.4g}")


def manual_run(seed, train=train_logreg):
    X, y, X_test, y_test = G.make_data(seed)
    torch.manual_seed(seed)
    w = torch.normal(0.0, 0.01, size=(X.shape[1], 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    history = train(w, b, X, y, G.MANUAL_LR, G.MANUAL_EPOCHS, G.MANUAL_BATCH, net=linreg, loss=bce_with_logits,
                    updater=sgd, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        accuracy, loss = G.judge_logits(X_test @ w + b, y_test)
    return accuracy, loss, history["train_loss"][-1]


def fast_run(seed, train=train_logreg_fast):
    X, y, X_test, y_test = G.make_data(seed)
    torch.manual_seed(seed)
    net, history = train(X, y, G.FAST_LR, G.FAST_EPOCHS, G.FAST_BATCH, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        accuracy, loss = G.judge_logits(net(X_test), y_test)
    return accuracy, loss, history["train_loss"][-1]


def train_double_sigmoid(w, b, X, y, lr, num_epochs, batch_size, net, loss, updater, generator):
    """Mistake: the loop applies a sigmoid to logits before a loss that applies its own."""
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(sigmoid(net(X_batch, w, b)), y_batch)
            l.sum().backward()
            updater([w, b], lr, batch_size)
            total += l.sum().item()
            count += l.numel()
        history["epoch"].append(epoch)
        history["train_loss"].append(total / count)
    return history


def fast_double_sigmoid(X, y, lr, num_epochs, batch_size, generator=None):
    """Mistake: nn.Sigmoid in the model and nn.BCEWithLogitsLoss."""
    net = nn.Sequential(nn.Linear(X.shape[1], 1), nn.Sigmoid())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y.float().reshape(-1, 1)),
                                         batch_size=batch_size, shuffle=True, generator=generator)
    history = fit(net, nn.BCEWithLogitsLoss(), torch.optim.SGD(net.parameters(), lr=lr), loader, num_epochs,
                  progress=False)
    return net, history


def main():
    seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(f"thresholds: accuracy >= {G.MIN_ACCURACY}, held-out loss <= {G.MAX_TEST_LOSS}, "
          f"last train loss <= {G.MAX_TRAIN_LOSS}")
    for label, run, train in [
        (f"manual reference (lr {G.MANUAL_LR}, batch {G.MANUAL_BATCH}, {G.MANUAL_EPOCHS} epochs)", manual_run,
         train_logreg),
        ("manual double sigmoid", manual_run, train_double_sigmoid),
        (f"fast reference (lr {G.FAST_LR}, batch {G.FAST_BATCH}, {G.FAST_EPOCHS} epochs)", fast_run,
         train_logreg_fast),
        ("fast double sigmoid", fast_run, fast_double_sigmoid),
    ]:
        runs = [run(s, train) for s in seeds]
        print(label)
        summary("held-out accuracy", [r[0] for r in runs])
        summary("held-out loss", [r[1] for r in runs])
        summary("last train loss", [r[2] for r in runs])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from calibrate_linear_regression import method_margins
    method_margins(seeds, G, train_logreg_fast)


if __name__ == "__main__":
    main()
