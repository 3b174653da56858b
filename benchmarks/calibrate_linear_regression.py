"""Calibrate the training thresholds of the 03-linear-regression graders.

Runs the reference training functions (course.linear_regression) on the graders' data and budgets for
20+ seeds and prints min / median / max of every judged quantity, then does the same for known-wrong
variants, which must land clearly on the other side of the thresholds; and the margins of the method checks
(the reference and the closest wrong methods against the graders' replayed loops).
Usage: python benchmarks/calibrate_linear_regression.py [num_seeds]
"""
import statistics
import sys

import torch
from torch import nn

from course.datasets import minibatches
from course.linear_regression import linreg, sgd, squared_loss, train_linreg, train_linreg_fast
from lesson_graders import lesson  # noqa: E402

G = lesson("linear_regression")


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
    method_margins(seeds, G, train_linreg_fast)


if __name__ == "__main__":
    main()



# ------------------------------------------------------------------ method checks (replayed loops)
def per_example_loss(module, y_hat, y):
    """The lesson's per-example loss: half the squared error (03) or binary cross-entropy of logits (04)."""
    if module.ASSIGNMENT == "03-linear-regression":
        return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2
    return nn.functional.binary_cross_entropy_with_logits(y_hat, y.reshape(y_hat.shape).float(), reduction="none")


def plain_mean_losses(module, X, y, w0, b0, seed):
    """The described manual loop, except that each epoch's loss is the plain mean of its batch means."""
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(module.TRACE_EPOCHS):
        means = []
        for X_batch, y_batch in minibatches(X, y, module.TRACE_BATCH, generator=gen):
            l = per_example_loss(module, X_batch @ w + b, y_batch)
            l.sum().backward()
            with torch.no_grad():
                for p in (w, b):
                    p -= module.TRACE_LR * p.grad / module.TRACE_BATCH
                    p.grad.zero_()
            means.append(l.mean().item())
        losses.append(sum(means) / len(means))
    return losses


class MomentumSGD(torch.optim.SGD):
    """Wrong method for the fast loop: SGD with momentum 0.9."""

    def __init__(self, params, lr, **kwargs):
        super().__init__(params, lr=lr, momentum=0.9)


def method_margins(seeds, module, train_fast):
    """Distance from the graders' replays of the reference (far below the tolerances) and of the closest
    wrong methods (far above them), over ``seeds``."""
    ref_params, ref_loss, other_order, plain = [], [], [], []
    fast_ref, fast_ref_loss, momentum = [], [], []
    for seed in seeds:
        X, y = module.make_trace_data(seed, module.TRACE_N)
        w0, b0 = 0.01 * torch.randn(3, 1, generator=torch.Generator().manual_seed(seed)), torch.zeros(1)
        w_ref, b_ref, losses = module.replay_manual(X, y, w0, b0, module.TRACE_LR, module.TRACE_EPOCHS,
                                                    module.TRACE_BATCH, seed, "batch_size")
        w_alt, b_alt, _ = module.replay_manual(X, y, w0, b0, module.TRACE_LR, module.TRACE_EPOCHS,
                                               module.TRACE_BATCH, seed + 1000, "batch_size")
        other_order.append(max((w_alt - w_ref).abs().max().item(), (b_alt - b_ref).abs().max().item()))
        plain.append(max(abs(a - e) / max(1.0, abs(e)) for a, e in zip(plain_mean_losses(module, X, y, w0, b0, seed),
                                                                       losses)))
        # the library's manual loop (the reference) against the replay
        lib_train = train_linreg if module.ASSIGNMENT == "03-linear-regression" else module_train_logreg()
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
        history = lib_train(w, b, X, y, module.TRACE_LR, module.TRACE_EPOCHS, module.TRACE_BATCH,
                            generator=torch.Generator().manual_seed(seed))
        # the library divides a smaller last step by its own size: the graders accept either replay
        replays = [(w_ref, b_ref, losses), module.replay_manual(X, y, w0, b0, module.TRACE_LR, module.TRACE_EPOCHS,
                                                                module.TRACE_BATCH, seed, "size")]
        ref_params.append(min(max((w.detach() - w_r).abs().max().item(), (b.detach() - b_r).abs().max().item())
                              for w_r, b_r, _ in replays))
        ref_loss.append(min(max(abs(a - e) / max(1.0, abs(e)) for a, e in zip(history["train_loss"], l_r))
                            for _, _, l_r in replays))
        # fast: the library's loop from the start it draws, with and without momentum, against the replay
        X_f, y_f = module.make_trace_data(seed, module.FAST_TRACE_N)
        X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(seed + 5))
        torch.manual_seed(seed)
        start = nn.Linear(3, 1)
        weight, bias = start.weight.detach(), start.bias.detach()
        if module.ASSIGNMENT == "03-linear-regression":
            net_want, want_losses = module.replay_fast(X_f, y_f, weight, bias, nn.MSELoss(), module.FAST_TRACE_LR,
                                                       module.TRACE_EPOCHS, module.FAST_TRACE_BATCH, seed)
        else:
            net_want, want_losses = module.replay_fast(X_f, y_f.float().reshape(-1, 1), weight, bias,
                                                       module.FAST_TRACE_LR, module.TRACE_EPOCHS,
                                                       module.FAST_TRACE_BATCH, seed)
        real_sgd = torch.optim.SGD
        for optimizer, sink in ((real_sgd, fast_ref), (MomentumSGD, momentum)):
            torch.optim.SGD = optimizer
            try:
                torch.manual_seed(seed)
                net, history = train_fast(X_f, y_f, module.FAST_TRACE_LR, module.TRACE_EPOCHS,
                                          module.FAST_TRACE_BATCH, generator=torch.Generator().manual_seed(seed))
            finally:
                torch.optim.SGD = real_sgd
            with torch.no_grad():
                sink.append((net(X_eval) - net_want(X_eval)).abs().max().item())
            if optimizer is real_sgd:
                fast_ref_loss.append(max(abs(a - e) / max(1.0, abs(e))
                                         for a, e in zip(history["train_loss"], want_losses)))
    print(f"method checks over {len(seeds)} seeds (tolerances: parameters/outputs {module.TOL_TRACE_PARAMS:g}, "
          f"train_loss {module.TOL_TRACE_LOSS:g} relative)")
    print(f"  manual reference: parameters off by at most {max(ref_params):.2g}, train_loss by {max(ref_loss):.2g}")
    print(f"  manual, minibatches in another order: parameters off by at least {min(other_order):.2g}")
    print(f"  manual, epoch loss as a plain mean of batch means: off by at least {min(plain):.2g}")
    print(f"  fast reference: outputs off by at most {max(fast_ref):.2g}, train_loss by {max(fast_ref_loss):.2g}")
    print(f"  fast with momentum 0.9: outputs off by at least {min(momentum):.2g}")


def module_train_logreg():
    from course.logistic_regression import train_logreg
    return train_logreg
