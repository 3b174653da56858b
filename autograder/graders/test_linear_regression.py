"""Graders for 03-linear-regression: parameters, model, squared loss, an in-place SGD step, training.

Training thresholds (benchmarks/calibrate_linear_regression.py, 20 seeded runs of the reference on the
graders' data: d = 3, n = 1000, noise 0.01, see ``make_data``):
- manual loop (lr 0.03, batch 10, 3 epochs, reference model/loss/updater injected): max |w - w*|
  2.2e-4 .. 1.0e-3 (median 5.0e-4), |b - b*| 1.9e-5 .. 1.2e-3, last epoch loss 5.0e-5 .. 6.2e-5.
  Thresholds: 0.02, 0.02 and 1e-3 (more than 15x above the worst reference run). Dividing by the
  batch size twice lands at max |w - w*| 0.75 .. 0.93 and loss 0.92 .. 0.99.
- fast (lr 0.1, batch 20, 3 epochs: a learning rate tuned for the mean loss): max prediction error on
  200 held-out points 1.5e-3 .. 9.0e-3, last epoch loss 9.6e-5 .. 1.1e-4. Thresholds: prediction 0.05,
  loss 1e-3. reduction="sum" diverges to NaN in every run; forgetting zero_grad gives prediction
  errors 6.5 .. 159.
The data seed follows COURSE_GRADING_SEED (default 0), so the flakiness check can grade the
reference under other seeds (benchmarks/flakiness.py).

Method checks (no threshold): a loop that reaches the outcome by another method (another order of the
minibatches, a step scaled differently, momentum, a history averaged over batches instead of examples)
is compared with the loop the instructions describe, replayed in the judging process from the same
starting parameters on the same minibatches (the generator fixes the order): 65 or 45 points, so the
last minibatch is smaller, 2 epochs; parameters within 1e-4, each epoch's train_loss within 1e-5
relative. The manual loop gets recording stand-ins for net, loss and updater (a loop that calls its own
functions by name is caught by the counts); the fast loop's starting parameters are read when it creates
its torch.optim.SGD. Margins over 20 grading seeds (benchmarks/calibrate_linear_regression.py): the reference
is 0 away from the replay (manual and fast); minibatches in another order move w and b by 1.6e-3 or more
(16x the tolerance), an epoch loss averaged over batch means is off by 1.2e-2 relative or more, momentum 0.9
moves the fast net's predictions by 3.6 or more.
"""
import math
import os

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task
from course.datasets import minibatches

ASSIGNMENT = "03-linear-regression"
TASKS = [
    Task("init_linreg_params", 1, "Leaf parameters w (d, 1) and b (1,) that require grad"),
    Task("linreg", 1, "The linear model X w + b"),
    Task("squared_loss", 1, "Per-example squared loss"),
    Task("sgd_step", 2, "Minibatch SGD, in place, gradients zeroed"),
    Task("train_linreg", 2, "The manual training loop recovers w and b"),
    Task("train_linreg_fast", 2, "nn.Linear + nn.MSELoss + optim.SGD"),
]

TRUE_W = torch.tensor([1.5, -2.0, 0.7], dtype=torch.float64)
TRUE_B = -1.3
N_TRAIN, N_TEST, NOISE = 1000, 200, 0.01

MANUAL_LR, MANUAL_BATCH, MANUAL_EPOCHS = 0.03, 10, 3
TOL_W, TOL_B, TOL_LOSS = 0.02, 0.02, 1e-3
FAST_LR, FAST_BATCH, FAST_EPOCHS = 0.1, 20, 3
TOL_PRED, TOL_FAST_LOSS = 0.05, 1e-3

# Method checks: small data whose last minibatch is smaller, replayed in the judging process.
TRACE_N, TRACE_LR, TRACE_BATCH, TRACE_EPOCHS = 65, 0.05, 10, 2
FAST_TRACE_N, FAST_TRACE_LR, FAST_TRACE_BATCH = 45, 0.1, 20
TOL_TRACE_PARAMS, TOL_TRACE_LOSS = 1e-4, 1e-5

CONTRACT = {
    "init_linreg_params": {
        "returns a tuple (w, b)": "test_init_params",
        "w is (d, 1) float32, a leaf tensor with requires_grad=True": "test_init_params",
        "b is (1,) float32 zeros, a leaf tensor with requires_grad=True": ["test_init_params", "test_init_uses_sigma"],
        "w ~ N(0, sigma^2) for the sigma given (default 0.01)": "test_init_uses_sigma",
        "a loss's backward() fills w.grad and b.grad": "test_init_params",
        "each call creates new tensors": "test_init_params",
        "works for any number of inputs d": "test_init_params",
    },
    "linreg": {
        "returns y_hat (n, 1) = X w + b": ["test_linreg", "test_linreg_other_shapes"],
        "keeps the dtype of its inputs (float32 and float64)": "test_linreg",
        "any n and d (one example, one feature)": "test_linreg_other_shapes",
        "tensor operations only: gradients reach w and b": "test_linreg",
    },
    "squared_loss": {
        "one loss (y_hat - y)**2 / 2 per example, shaped like y_hat (n, 1), not reduced": "test_squared_loss",
        "y may be (n,) or (n, 1)": "test_squared_loss",
        "y is not changed": "test_squared_loss",
        "differentiable with respect to y_hat": "test_squared_loss",
    },
    "sgd_step": {
        "each p becomes p - lr * p.grad / batch_size, for the lr and batch_size given": "test_sgd_updates_in_place",
        "in place: the same tensor objects, still leaves that require grad": "test_sgd_updates_in_place",
        "gradients are zero (or None) afterwards": "test_sgd_updates_in_place",
        "any shapes of parameters": "test_sgd_updates_in_place",
        "returns nothing": "not enforced: a returned value is ignored by every caller, so returning one "
                           "(e.g. the list of parameters) does no harm as long as the update is in place",
    },
    "train_linreg": {
        "uses the net, loss and updater it is given (not functions by name)": "test_train_linreg_uses_its_arguments",
        "minibatches(X, y, batch_size, generator=generator) in that order, backward() on the sum, "
        "updater([w, b], lr, batch_size) once per minibatch": "test_train_linreg_follows_the_method",
        "train_loss is the mean per-example loss over each epoch (a smaller last batch weighs less)":
            "test_train_linreg_follows_the_method",
        "history {'epoch': [1..num_epochs], 'train_loss': [float per epoch]}":
            ["test_train_linreg_recovers_parameters", "test_train_linreg_follows_the_method"],
        "w and b are trained in place and stay leaves": "test_train_linreg_recovers_parameters",
        "training recovers the parameters of the data": "test_train_linreg_recovers_parameters",
    },
    "train_linreg_fast": {
        "returns (net, history); net maps (m, d) to (m, 1)": "test_train_linreg_fast_predicts",
        "nn.MSELoss() (the mean) and torch.optim.SGD(net.parameters(), lr=lr), zero_grad every step":
            "test_train_linreg_fast_follows_the_method",
        "a shuffling DataLoader that uses the generator given": "test_train_linreg_fast_follows_the_method",
        "train_loss is the mean of nn.MSELoss over each epoch's examples": "test_train_linreg_fast_follows_the_method",
        "history holds one train_loss per epoch": "test_train_linreg_fast_predicts",
        "the trained net predicts new data": "test_train_linreg_fast_predicts",
    },
}


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def make_data(seed):
    """Training data X (n, 3) float32, y (n, 1) float32, and held-out X_test with noise-free targets (float64)."""
    gen = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(N_TRAIN, 3, generator=gen)
    y = (X.double() @ TRUE_W + TRUE_B + NOISE * torch.randn(N_TRAIN, generator=gen, dtype=torch.float64))
    X_test = torch.randn(N_TEST, 3, generator=gen)
    y_test = (X_test.double() @ TRUE_W + TRUE_B).reshape(-1, 1)
    return X, y.float().reshape(-1, 1), X_test, y_test


# ------------------------------------------------------------------------------------------ probes
def probe_init(ns, num_inputs):
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(0)
    first = init(num_inputs)
    second = init(num_inputs)
    if not isinstance(first, (tuple, list)) or len(first) != 2:
        return {"pair": False, "type": type(first).__name__}

    def describe(t):
        if not isinstance(t, torch.Tensor):
            return {"tensor": False, "type": type(t).__name__}
        return {"tensor": True, "leaf": t.is_leaf, "requires_grad": t.requires_grad, "values": t.detach().clone()}

    w, b = first
    out = {"pair": True, "w": describe(w), "b": describe(b),
           "fresh": second[0] is not w and second[1] is not b}
    if out["w"]["tensor"] and out["b"]["tensor"] and w.requires_grad and b.requires_grad:
        # Gradients of a loss must reach both tensors.
        X = torch.randn(5, num_inputs, dtype=w.dtype)
        ((X @ w + b) ** 2).sum().backward()
        out["w_grad"] = w.grad is not None
        out["b_grad"] = b.grad is not None
    return out


def probe_linreg(ns, X, w, b):
    import torch
    linreg = ns.require("linreg")
    w = w.clone().requires_grad_()
    b = b.clone().requires_grad_()
    y_hat = linreg(X, w, b)
    out = {"y_hat": y_hat.detach().clone() if isinstance(y_hat, torch.Tensor) else y_hat,
           "graph": isinstance(y_hat, torch.Tensor) and y_hat.requires_grad}
    if out["graph"]:
        y_hat.sum().backward()
        out["w_grad"] = None if w.grad is None else w.grad.clone()
        out["b_grad"] = None if b.grad is None else b.grad.clone()
    return out


def probe_squared_loss(ns, y_hat, y):
    import torch
    loss = ns.require("squared_loss")
    y_hat = y_hat.clone().requires_grad_()
    y_before = y.clone()
    l = loss(y_hat, y)
    out = {"loss": l.detach().clone() if isinstance(l, torch.Tensor) else l,
           "y_unchanged": torch.equal(y, y_before),
           "graph": isinstance(l, torch.Tensor) and l.requires_grad}
    if out["graph"]:
        l.sum().backward()
        out["grad"] = None if y_hat.grad is None else y_hat.grad.clone()
    return out


def probe_sgd(ns, values, grads, lr, batch_size, steps):
    import torch
    sgd = ns.require("sgd")
    params = [v.clone().requires_grad_() for v in values]
    originals = list(params)
    history = []
    for step in range(steps):
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        passed = list(params)
        result = sgd(passed, lr, batch_size)
        history.append({
            "same_objects": all(a is b for a, b in zip(passed, originals)) and len(passed) == len(originals),
            "leaf": [p.is_leaf for p in originals],
            "requires_grad": [p.requires_grad for p in originals],
            "values": [p.detach().clone() for p in originals],
            "grad_zero": [p.grad is None or bool((p.grad == 0).all()) for p in originals],
            "returned_none": result is None,
        })
    return history


_REFERENCE_PIECES = '''
def ref_linreg(X, w, b):
    return X @ w + b

def ref_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

def ref_sgd(params, lr, batch_size):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad / batch_size
                p.grad.zero_()
'''


def probe_train_linreg(ns, X, y, lr, num_epochs, batch_size, seed, pieces):
    import torch
    train = ns.require("train_linreg")
    scope = {"torch": torch}
    exec(pieces, scope)  # reference model, loss and updater: this task judges the loop alone
    torch.manual_seed(seed)
    w = torch.normal(0.0, 0.01, size=(X.shape[1], 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    w_start, b_start = w.detach().clone(), b.detach().clone()
    history = train(w, b, X, y, lr, num_epochs, batch_size, net=scope["ref_linreg"], loss=scope["ref_loss"],
                    updater=scope["ref_sgd"], generator=torch.Generator().manual_seed(seed))
    out = {"w": w.detach().clone(), "b": b.detach().clone(),
           "moved": not (torch.equal(w.detach(), w_start) and torch.equal(b.detach(), b_start)),
           "leaf": w.is_leaf and b.is_leaf, "history_type": type(history).__name__}
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def probe_train_fast(ns, X, y, X_test, lr, num_epochs, batch_size, seed):
    import torch
    train = ns.require("train_linreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"pair": False, "type": type(result).__name__}
    net, history = result
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        y_hat = net(X_test)
    out = {"pair": True, "y_hat": y_hat.detach().clone(), "history_type": type(history).__name__}
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def probe_init_sigma(ns, num_inputs, sigma):
    """w and b from init_linreg_params(num_inputs) (sigma None) or init_linreg_params(num_inputs, sigma=sigma)."""
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(1)
    result = init(num_inputs) if sigma is None else init(num_inputs, sigma=sigma)
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not all(
            isinstance(t, torch.Tensor) for t in result):
        return {"error": f"returned a {type(result).__name__}, not a tuple of two tensors (w, b)"}
    return {"w": result[0].detach().clone(), "b": result[1].detach().clone()}


def make_trace_data(seed, n):
    """Small training data for the method checks: X (n, 3) float32, y (n, 1) float32."""
    gen = torch.Generator().manual_seed(3000 + seed)
    X = torch.randn(n, 3, generator=gen)
    y = (X.double() @ TRUE_W + TRUE_B + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    return X, y.reshape(-1, 1)


def probe_train_linreg_traced(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces):
    """train_linreg with recording stand-ins for net, loss and updater; returns w, b, history and the calls."""
    import torch
    train = ns.require("train_linreg")
    scope = {"torch": torch}
    exec(pieces, scope)
    calls = {"net": 0, "loss": 0, "updater": []}

    def net(X, w, b):
        calls["net"] += 1
        return scope["ref_linreg"](X, w, b)

    def loss(y_hat, y):
        calls["loss"] += 1
        return scope["ref_loss"](y_hat, y)

    def updater(params, lr, batch_size):
        calls["updater"].append([float(lr), float(batch_size)])
        return scope["ref_sgd"](params, lr, batch_size)

    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    torch.manual_seed(seed)
    history = train(w, b, X, y, lr, num_epochs, batch_size, net=net, loss=loss, updater=updater,
                    generator=torch.Generator().manual_seed(seed))
    out = {"w": w.detach().clone(), "b": b.detach().clone(), "calls": calls,
           "history_type": type(history).__name__}
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def probe_train_fast_traced(ns, X, y, X_eval, lr, num_epochs, batch_size, seed):
    """train_linreg_fast with torch.optim.SGD replaced by a subclass that records the starting parameters."""
    import torch
    train = ns.require("train_linreg_fast")
    real_sgd = torch.optim.SGD
    created = []

    class SGD(real_sgd):
        def __init__(self, params, *args, **kwargs):
            params = list(params)
            super().__init__(params, *args, **kwargs)
            group = self.param_groups[0]
            created.append({"start": [p.detach().clone() for g in self.param_groups for p in g["params"]],
                            "lr": float(group["lr"]), "momentum": float(group.get("momentum", 0.0)),
                            "weight_decay": float(group.get("weight_decay", 0.0))})

    aliases = [name for name, value in ns.globals.items() if value is real_sgd]
    torch.optim.SGD = SGD
    for name in aliases:
        ns.globals[name] = SGD
    try:
        torch.manual_seed(seed)
        result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    finally:
        torch.optim.SGD = real_sgd
        for name in aliases:
            ns.globals[name] = real_sgd
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"pair": False, "type": type(result).__name__}
    net, history = result
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        y_hat = net(X_eval)
    out = {"pair": True, "y_hat": y_hat.detach().clone(), "created": created, "history_type": type(history).__name__}
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


# ------------------------------------------------------------------------------------------ helpers
def _check_history(out, num_epochs, what, threshold):
    expect(out.get("history_type") == "dict",
           f"{what} should return a history dict {{'epoch': [...], 'train_loss': [...]}}, but it returned "
           f"a {out.get('history_type')}.")
    losses = out.get("train_loss")
    expect(losses is not None, f"The history of {what} should have a key 'train_loss' holding a list of "
                               f"numbers (it has keys {out.get('keys')}).")
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect(all(math.isfinite(v) for v in losses),
           f"The training loss of {what} became inf or NaN: training diverged ({losses}).")
    expect(losses[-1] <= threshold,
           f"After {num_epochs} epochs the training loss of {what} is {losses[-1]:.4g}; a correct loop "
           f"reaches below {threshold:g} on this data (tolerance included). Does every step use the "
           f"gradient of the batch's mean loss exactly once?")


def replay_manual(X, y, w0, b0, lr, num_epochs, batch_size, seed, last_divisor):
    """The loop of the instructions, in the judging process: (w, b, train_loss per epoch).

    ``last_divisor``: what the step of a smaller last minibatch is divided by (``"batch_size"`` as the
    instructions write it, or ``"size"``, the minibatch's own size, as a mean loss gives it).
    """
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=gen):
            l = (X_batch @ w + b - y_batch.reshape(-1, 1)) ** 2 / 2
            l.sum().backward()
            divisor = batch_size if last_divisor == "batch_size" else len(X_batch)
            with torch.no_grad():
                for p in (w, b):
                    p -= lr * p.grad / divisor
                    p.grad.zero_()
            total += l.sum().item()
            count += l.numel()
        losses.append(total / count)
    return w.detach(), b.detach(), losses


def replay_fast(X, y, weight, bias, loss_fn, lr, num_epochs, batch_size, seed):
    """nn.Linear from (weight, bias) trained by the instructions' loop; returns (net, train_loss per epoch)."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    net = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        net.weight.copy_(weight)
        net.bias.copy_(bias.reshape(-1))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for X_batch, y_batch in loader:
            l = loss_fn(net(X_batch), y_batch)
            optimizer.zero_grad()
            l.backward()
            optimizer.step()
            total += l.item() * len(X_batch)
            count += len(X_batch)
        losses.append(total / count)
    return net, losses


def linear_start(created, d, what):
    """(weight (1, d), bias (1,)) that the student's torch.optim.SGD started from, or fail."""
    expect(len(created) >= 1, f"{what} should train with torch.optim.SGD(net.parameters(), lr=lr); no "
                              f"torch.optim.SGD was created.")
    start = created[-1]["start"]
    weights = [t for t in start if tuple(t.shape) in ((1, d), (d, 1), (d,))]
    biases = [t for t in start if tuple(t.shape) in ((1,), ())]
    expect(len(start) == 2 and len(weights) == 1 and len(biases) == 1,
           f"{what} should optimise the weight and the bias of one nn.Linear({d}, 1) (2 tensors); the optimizer "
           f"was given {len(start)} tensors of shapes {[tuple(t.shape) for t in start]}.")
    return weights[0].reshape(1, d), biases[0].reshape(1)


def expect_history_matches(out, expected, num_epochs, what, rule):
    losses = out.get("train_loss")
    expect(out.get("history_type") == "dict" and losses is not None and len(losses) == num_epochs,
           f"{what} should return a history dict whose 'train_loss' holds one number per epoch "
           f"({num_epochs} for {num_epochs} epochs).")
    for epoch, (got, want) in enumerate(zip(losses, expected), start=1):
        expect(math.isfinite(got) and abs(got - want) <= TOL_TRACE_LOSS * max(1.0, abs(want)),
               f"In epoch {epoch}, {what} reports train_loss {got:.6g}, but {rule} is {want:.6g} (relative "
               f"tolerance {TOL_TRACE_LOSS:g}). With 45 or 65 examples the last minibatch is smaller: weigh each "
               f"batch by its number of examples, and start each epoch's sum afresh.")


# ------------------------------------------------------------------------------------------ graders
@pytest.mark.init_linreg_params
@pytest.mark.parametrize("d", [3, 7])
def test_init_params(student, d):
    out = student.probe(probe_init, d, label="`init_linreg_params`")
    expect(out["pair"], f"init_linreg_params should return a tuple (w, b), not a {out.get('type')}.")
    for name, shape in (("w", (d, 1)), ("b", (1,))):
        info = out[name]
        expect(info["tensor"], f"{name} should be a torch.Tensor, not a {info.get('type')}.")
        expect_tensor(info["values"], f"{name} from init_linreg_params({d})", shape=shape, dtype=torch.float32,
                      finite=True)
        expect(info["requires_grad"], f"{name} should have requires_grad=True, or autograd will not compute "
                                      f"its gradient.")
        expect(info["leaf"], f"{name} is not a leaf tensor: it was computed from another tensor that requires "
                             f"grad (e.g. torch.randn(..., requires_grad=True) * sigma), so its .grad stays "
                             f"None. Create the values first, then ask for gradients.")
    expect(out.get("w_grad") and out.get("b_grad"), "A loss's backward() should fill w.grad and b.grad.")
    biggest = out["w"]["values"].abs().max().item()
    expect(biggest <= 1.0, f"w should start small (the instructions use N(0, 0.01^2)); its largest entry "
                           f"is {biggest:.3g} (allowed: at most 1 in absolute value).")
    expect(out["fresh"], "Each call of init_linreg_params should create new tensors, not return the same "
                         "ones again.")


@pytest.mark.linreg
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linreg(student, dtype):
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(37, 3, generator=gen, dtype=dtype)
    w = torch.randn(3, 1, generator=gen, dtype=dtype)
    b = torch.randn(1, generator=gen, dtype=dtype)
    out = student.probe(probe_linreg, X, w, b, label="`linreg`")
    y_hat = expect_tensor(out["y_hat"], "linreg(X, w, b)", shape=(37, 1), dtype=dtype)
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    expect_close(y_hat, X.double() @ w.double() + b.double(), f"linreg(X, w, b) with X (37, 3) in {dtype}", **tol)
    expect(out["graph"], "linreg's output is not connected to w and b: use tensor operations on them "
                         "(no .detach(), .numpy() or .item()), so that autograd can compute gradients.")
    expect(out["w_grad"] is not None and out["b_grad"] is not None,
           "Gradients of linreg's output should reach both w and b.")
    expect_close(out["w_grad"], X.double().sum(dim=0, keepdim=True).T, "the gradient of sum(linreg(X, w, b)) "
                 "with respect to w", **tol)
    expect_close(out["b_grad"], torch.tensor([37.0], dtype=torch.float64),
                 "the gradient of sum(linreg(X, w, b)) with respect to b", **tol)


@pytest.mark.squared_loss
@pytest.mark.parametrize("y_shape", ["(n, 1)", "(n,)"])
def test_squared_loss(student, y_shape):
    gen = torch.Generator().manual_seed(4)
    y_hat = torch.randn(37, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(37, 1, generator=gen, dtype=torch.float64)
    sent = y if y_shape == "(n, 1)" else y.reshape(-1)
    out = student.probe(probe_squared_loss, y_hat, sent, label="`squared_loss`")
    what = f"squared_loss(y_hat, y) with y_hat (37, 1) and y {y_shape.replace('(n', '(37')}"
    expect_tensor(out["loss"], what, shape=(37, 1))
    expect_close(out["loss"], (y_hat - y) ** 2 / 2, what + " (one loss (y_hat - y)**2 / 2 per example)",
                 rtol=1e-10, atol=1e-12)
    expect(out["y_unchanged"], "squared_loss should not change its argument y.")
    expect(out["graph"] and out["grad"] is not None, "The loss should be differentiable with respect to y_hat "
                                                     "(use tensor operations only).")
    expect_close(out["grad"], y_hat - y, "the gradient of the summed squared loss with respect to y_hat",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.sgd_step
def test_sgd_updates_in_place(student):
    gen = torch.Generator().manual_seed(5)
    shapes = [(3, 1), (1,), (4, 5)]
    values = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(2)]
    lr, batch_size = 0.1, 5
    steps = student.probe(probe_sgd, values, grads, lr, batch_size, 2, label="`sgd`")
    expected = [v.double() for v in values]
    for k, step in enumerate(steps, start=1):
        when = "after one step" if k == 1 else "after a second step"
        expect(step["same_objects"], "sgd should update the tensors in the list it is given, not replace them "
                                     "by new tensors.")
        expected = [e - lr * g.double() / batch_size for e, g in zip(expected, grads[k - 1])]
        for i, (value, leaf, req) in enumerate(zip(step["values"], step["leaf"], step["requires_grad"])):
            expect(req, f"A parameter lost requires_grad {when}: update it in place under torch.no_grad() "
                        f"(or through .data) instead of creating a new tensor.")
            expect(leaf, f"A parameter is no longer a leaf tensor {when}: the update was recorded by autograd. "
                         f"Update in place under torch.no_grad() (or through .data).")
            expect_close(value, expected[i], f"parameter {i} of shape {tuple(value.shape)} {when} "
                         f"(should be p - lr * p.grad / batch_size, changed in place: rebinding a name, "
                         f"p = p - ..., changes nothing for the caller)", rtol=1e-5, atol=1e-6)
        expect(all(step["grad_zero"]), f"The gradients should be zero (or None) {when}: backward() adds to .grad, "
                                       f"so gradients that are not cleared pile up from step to step.")


@pytest.mark.train_linreg
def test_train_linreg_recovers_parameters(student):
    seed = grading_seed()
    X, y, _, _ = make_data(seed)
    out = student.probe(probe_train_linreg, X, y, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed,
                        _REFERENCE_PIECES, label="`train_linreg`")
    expect(out["leaf"], "After train_linreg, w and b should still be leaf tensors.")
    expect(out["moved"], "train_linreg did not change the w and b it was given: the training loop must update "
                         "those very tensors (through updater), not new ones.")
    _check_history(out, MANUAL_EPOCHS, "train_linreg", TOL_LOSS)
    w = out["w"].double().reshape(-1)
    if not torch.isfinite(w).all():
        fail("w became inf or NaN during training.")
    w_err = (w - TRUE_W).abs().max().item()
    b_err = abs(out["b"].double().reshape(-1)[0].item() - TRUE_B)
    expect(w_err <= TOL_W and b_err <= TOL_B,
           f"After {MANUAL_EPOCHS} epochs (lr {MANUAL_LR}, batch size {MANUAL_BATCH}) on data made with known "
           f"parameters, w and b are off by up to {max(w_err, b_err):.3g}; a correct loop gets within "
           f"{TOL_W:g} (tolerance).")


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_predicts(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_linreg_fast`")
    expect(out["pair"], f"train_linreg_fast should return a tuple (net, history), not a {out.get('type')}.")
    y_hat = expect_tensor(out["y_hat"], f"net(X) for X of shape ({N_TEST}, 3)", shape=(N_TEST, 1))
    _check_history(out, FAST_EPOCHS, "train_linreg_fast", TOL_FAST_LOSS)
    if not torch.isfinite(y_hat).all():
        fail("The trained net predicts inf or NaN: training diverged.")
    err = (y_hat.double() - y_test).abs().max().item()
    expect(err <= TOL_PRED,
           f"After {FAST_EPOCHS} epochs (lr {FAST_LR}, batch size {FAST_BATCH}) the trained net's predictions on "
           f"new inputs are off by up to {err:.3g}; a correct solution stays within {TOL_PRED:g} (tolerance). "
           f"Check the loss's reduction and that gradients are cleared every step.")


@pytest.mark.init_linreg_params
@pytest.mark.parametrize("sigma", [None, 0.5])
def test_init_uses_sigma(student, sigma):
    d = 4000
    call = f"init_linreg_params({d})" if sigma is None else f"init_linreg_params({d}, sigma={sigma})"
    out = student.probe(probe_init_sigma, d, sigma, label="`init_linreg_params`")
    if "error" in out:
        fail(f"{call} {out['error']}.")
    w = expect_tensor(out["w"], f"w from {call}", shape=(d, 1), dtype=torch.float32, finite=True).double()
    b = expect_tensor(out["b"], f"b from {call}", shape=(1,), dtype=torch.float32)
    expect(bool((b == 0).all()), f"b from {call} should be zeros, but it is {b.tolist()}.")
    target = 0.01 if sigma is None else sigma
    std, mean = w.std().item(), w.mean().item()
    # 4000 draws: the standard error of the std is sigma / 89, of the mean sigma / 63; both bands are 6+ of them.
    expect(0.9 * target <= std <= 1.1 * target and abs(mean) <= 0.1 * target,
           f"The entries of w from {call} should be drawn from N(0, sigma^2) with sigma = {target:g}; over {d} "
           f"entries their mean is {mean:.3g} and their standard deviation {std:.3g} (allowed: mean within "
           f"{0.1 * target:g} of 0, standard deviation within 10% of {target:g}). Use the argument sigma.")


@pytest.mark.linreg
@pytest.mark.parametrize("n,d", [(1, 5), (64, 1)])
def test_linreg_other_shapes(student, n, d):
    gen = torch.Generator().manual_seed(30 + n)
    X = torch.randn(n, d, generator=gen)
    w = torch.randn(d, 1, generator=gen)
    b = torch.randn(1, generator=gen)
    out = student.probe(probe_linreg, X, w, b, label="`linreg`")
    what = f"linreg(X, w, b) with X ({n}, {d}), w ({d}, 1), b (1,)"
    y_hat = expect_tensor(out["y_hat"], what, shape=(n, 1), dtype=torch.float32)
    expect_close(y_hat, X.double() @ w.double() + b.double(), what, rtol=1e-5, atol=1e-5)


def _traced_manual(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, TRACE_N)
    gen = torch.Generator().manual_seed(4000 + seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=gen), torch.zeros(1)
    out = student.probe(probe_train_linreg_traced, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed,
                        _REFERENCE_PIECES, label="`train_linreg`")
    return X, y, w0, b0, seed, out


@pytest.mark.train_linreg
def test_train_linreg_uses_its_arguments(student):
    _, _, _, _, _, out = _traced_manual(student)
    batches = TRACE_EPOCHS * math.ceil(TRACE_N / TRACE_BATCH)
    calls = out["calls"]
    setting = f"{TRACE_EPOCHS} epochs over {TRACE_N} examples in minibatches of {TRACE_BATCH}: {batches} minibatches"
    for name, count in (("net", calls["net"]), ("loss", calls["loss"]), ("updater", len(calls["updater"]))):
        expect(count >= batches,
               f"train_linreg should compute every step with the `{name}` it is given (an argument), but with "
               f"{setting}, it called `{name}` {count} times. Use the arguments net, loss and updater rather "
               f"than your own functions by name: later lessons pass other models and update rules.")
    expect(len(calls["updater"]) == batches,
           f"train_linreg should call updater exactly once per minibatch ({setting}), but it called it "
           f"{len(calls['updater'])} times.")


@pytest.mark.train_linreg
def test_train_linreg_follows_the_method(student):
    X, y, w0, b0, seed, out = _traced_manual(student)
    got = torch.cat([expect_tensor(out["w"], "w after train_linreg", shape=(3, 1)).reshape(-1),
                     expect_tensor(out["b"], "b after train_linreg", shape=(1,)).reshape(-1)]).double()
    worst, losses = math.inf, None
    for last_divisor in ("batch_size", "size"):
        w, b, replayed = replay_manual(X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, last_divisor)
        want = torch.cat([w.reshape(-1), b.reshape(-1)]).double()
        error = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
        if losses is None or error < worst:
            worst, losses = error, replayed
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {TRACE_N} examples (lr {TRACE_LR}, minibatches of {TRACE_BATCH}), w and "
           f"b differ by up to {worst:.3g} from what the loop described in the instructions gives from the same "
           f"start (tolerance {TOL_TRACE_PARAMS:g}). Check that you iterate over "
           f"minibatches(X, y, batch_size, generator=generator) (the generator fixes their order), call "
           f"backward() on the sum of the per-example losses, and step once per minibatch.")
    expect_history_matches(out, losses, TRACE_EPOCHS, "train_linreg",
                           "the mean per-example loss over that epoch's minibatches")


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(5000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_linreg_fast`")
    expect(out["pair"], f"train_linreg_fast should return a tuple (net, history), not a {out.get('type')}.")
    created = out["created"]
    weight, bias = linear_start(created, 3, "train_linreg_fast")
    opts = created[-1]
    expect(opts["lr"] == FAST_TRACE_LR and opts["momentum"] == 0 and opts["weight_decay"] == 0,
           f"train_linreg_fast should use torch.optim.SGD(net.parameters(), lr=lr) with the lr it is given "
           f"({FAST_TRACE_LR}) and nothing else; it used lr={opts['lr']:g}, momentum={opts['momentum']:g}, "
           f"weight_decay={opts['weight_decay']:g}.")
    net, losses = replay_fast(X, y, weight, bias, torch.nn.MSELoss(), FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH,
                              seed)
    with torch.no_grad():
        want = net(X_eval).double()
    got = expect_tensor(out["y_hat"], "the trained net's predictions for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's predictions differ by up to {worst:.3g} from what the loop of "
           f"the instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, y), batch_size, shuffle=True, generator=generator), nn.MSELoss() "
           f"with its default mean, optimizer.zero_grad() before each backward(), one optimizer.step() per batch.")
    expect_history_matches(out, losses, TRACE_EPOCHS, "train_linreg_fast",
                           "the mean of nn.MSELoss over that epoch's examples")
