"""Calibrate the training thresholds of the 03-linear-regression graders.

Runs the reference training functions (course.linear_regression) on the graders' data and budgets for
20+ seeds and prints min / median / max of every judged quantity, then does the same for known-wrong
variants, which must land clearly on the other side of the thresholds.
Usage: python benchmarks/calibrate_linear_regression.py [num_seeds]
"""
import statistics
import sys

import torch
from torch import nn

from course.linear_regression import linreg, sgd, squared_loss, train_linreg, train_linreg_fast
from autograder.graders import test_linear_regression as G


def summary(name, values):
    values = [float(v) for v in values]
    print(f"  {name:>14}: min {min(values):.3g}  median {statistics.median(values):.3g}  max {max(values):.3g}")


def manual_run(seed, train=train_linreg, **kwargs):
    X, y, _, _ = G.make_data(seed)
    torch.manual_seed(seed)
    w = torch.normal(0.0, 0.01, size=(X.shape[1], 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    history = train(w, b, X, y, G.MANUAL_LR, G.MANUAL_EPOCHS, G.MANUAL_BATCH,
                    net=linreg, loss=squared_loss, updater=sgd, generator=torch.Generator().manual_seed(seed),
                    **kwargs)
    w_err = (w.detach().reshape(-1) - G.TRUE_W).abs().max().item()
    b_err = abs(b.item() - G.TRUE_B)
    return w_err, b_err, history["train_loss"][-1]


def fast_run(seed, train=train_linreg_fast):
    X, y, X_test, y_test = G.make_data(seed)
    torch.manual_seed(seed)
    net, history = train(X, y, G.FAST_LR, G.FAST_EPOCHS, G.FAST_BATCH, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        pred = net(X_test)
    err = (pred.double() - y_test).abs().max().item()
    return err, history["train_loss"][-1]


def train_double_division(w, b, X, y, lr, num_epochs, batch_size, net, loss, updater, generator):
    """Mistake: mean of the losses and an updater that divides by the batch size again."""
    from course.datasets import minibatches
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(net(X_batch, w, b), y_batch)
            l.mean().backward()
            updater([w, b], lr, batch_size)
            total += l.sum().item()
            count += l.numel()
        history["epoch"].append(epoch)
        history["train_loss"].append(total / count)
    return history


def fast_variant(reduction="mean", zero_grad=True):
    def train(X, y, lr, num_epochs, batch_size, generator=None):
        net = nn.Linear(X.shape[1], 1)
        loss_fn = nn.MSELoss(reduction=reduction)
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size,
                                             shuffle=True, generator=generator)
        history = {"epoch": [], "train_loss": []}
        for epoch in range(1, num_epochs + 1):
            total, count = 0.0, 0
            for X_batch, y_batch in loader:
                l = loss_fn(net(X_batch), y_batch)
                if zero_grad:
                    optimizer.zero_grad()
                l.backward()
                optimizer.step()
                total += l.item() * (len(X_batch) if reduction == "mean" else 1)
                count += len(X_batch)
            history["epoch"].append(epoch)
            history["train_loss"].append(total / count)
        return net, history
    return train


def main():
    seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(f"manual: lr {G.MANUAL_LR}, batch {G.MANUAL_BATCH}, {G.MANUAL_EPOCHS} epochs; thresholds "
          f"w {G.TOL_W}, b {G.TOL_B}, loss {G.TOL_LOSS}")
    for label, kwargs in [("reference", {}), ("double division", {"train": train_double_division})]:
        runs = [manual_run(s, **kwargs) for s in seeds]
        print(label)
        summary("max |w - w*|", [r[0] for r in runs])
        summary("|b - b*|", [r[1] for r in runs])
        summary("final loss", [r[2] for r in runs])
    print(f"fast: lr {G.FAST_LR}, batch {G.FAST_BATCH}, {G.FAST_EPOCHS} epochs; thresholds "
          f"prediction {G.TOL_PRED}, loss {G.TOL_FAST_LOSS}")
    for label, train in [("reference", train_linreg_fast), ("reduction=sum", fast_variant("sum")),
                         ("no zero_grad", fast_variant(zero_grad=False))]:
        runs = [fast_run(s, train) for s in seeds]
        print(label)
        summary("max pred error", [r[0] for r in runs])
        summary("final loss", [r[1] for r in runs])


if __name__ == "__main__":
    main()
