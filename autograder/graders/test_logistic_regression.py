"""Graders for 04-logistic-regression: stable sigmoid, stable binary cross-entropy, accuracy, training.

Training thresholds (benchmarks/calibrate_logistic_regression.py, 20 seeded runs of the reference on the
graders' data: two Gaussian blobs in d = 3, centres (1, -1, 0.5) and (-1, 1, -0.5), spread 1, 500 training
points per class, 500 held-out points per class, see ``make_data``):
- manual loop (lr 0.1, batch 10, 3 epochs, reference model/loss/updater injected): held-out accuracy
  0.911 .. 0.952 (median 0.930), held-out loss 0.151 .. 0.206, last training loss 0.157 .. 0.201;
- fast (same budget): accuracy 0.912 .. 0.952, held-out loss 0.151 .. 0.205, training loss 0.157 .. 0.201.
Thresholds: accuracy >= 0.86 (0.05 below the worst run, about 5 standard errors of a 1000-point
estimate), held-out loss <= 0.3 and last training loss <= 0.3 (about 0.1 above the worst run).
Wrong variants: a double sigmoid in the manual loop keeps accuracy (0.904 .. 0.947) and even the held-out
loss of its logits (0.179 .. 0.226), but the loss it optimises and reports cannot go below ~0.5
(0.561 .. 0.570): the reported training loss catches it. A double sigmoid in the fast model outputs
probabilities, read as logits: accuracy 0.5, loss 0.556 .. 0.570. BCELoss on logits raises an error.
The data seed follows COURSE_GRADING_SEED (default 0), so the flakiness check can grade the
reference under other seeds (benchmarks/flakiness.py).

Method checks (no threshold), as in 03: the loops are replayed in the judging process from the same
starting parameters on the same minibatches (65 or 45 points, so the last minibatch is smaller, 2
epochs) and compared: parameters or logits within 1e-4, each epoch's train_loss within 1e-5 relative.
Margins over 20 grading seeds (benchmarks/calibrate_logistic_regression.py): the reference is at most 1.2e-7
away (manual) and 0 (fast); minibatches in another order move w and b by 1.5e-2 or more, an epoch loss
averaged over batch means is off by 5.9e-3 relative or more, momentum 0.9 moves the logits by 1.7 or more.

Class at the threshold: a probability of exactly 0.5 (a logit of exactly 0) is class 1, as the
instructions say; binary_accuracy is checked there, and the judge's own accuracy uses logit >= 0.

diagnose_training: judged on runs made here (seeded by COURSE_GRADING_SEED, with noise), 6 per kind,
8 to 30 epochs each: healthy (loss falls by more than half and flattens, gradient norm shrinks tenfold or
more), learning rate too low (loss falls by 2-6% in all, gradient norm steady within 10%), learning rate
too high (loss and gradient norm jumping around and climbing, by 10-40% and 30-100% of their start per
epoch; or loss and gradient norm growing 2-10x per epoch until inf and NaN), gradients never zeroed
(loss falls to and swings within 30-85% of its start, the norm of the accumulated gradient grows about
linearly to 8-30x its start). The rules of the
instructions have wide margins on every run: noise of 0.2% on the losses of slow runs, 2% on healthy
ones, 5-10% on gradient norms.
"""
import math
import os

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task
from course.datasets import minibatches

ASSIGNMENT = "04-logistic-regression"
TASKS = [
    Task("sigmoid", 1, "A sigmoid that is finite, with finite gradients, for any input"),
    Task("bce_with_logits", 2, "Binary cross-entropy of logits in a stable form"),
    Task("binary_accuracy", 1, "Accuracy at probability threshold 0.5"),
    Task("train_logreg", 2, "The manual training loop: held-out accuracy and loss"),
    Task("train_logreg_fast", 2, "nn.Linear + nn.BCEWithLogitsLoss + optim.SGD"),
    Task("diagnose_training", 2, "Diagnose training runs from their loss curves and gradient norms"),
]

CENTERS = torch.tensor([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]])
N_PER_CLASS = 500

MANUAL_LR, MANUAL_BATCH, MANUAL_EPOCHS = 0.1, 10, 3
FAST_LR, FAST_BATCH, FAST_EPOCHS = 0.1, 10, 3
MIN_ACCURACY, MAX_TEST_LOSS, MAX_TRAIN_LOSS = 0.86, 0.3, 0.3

# Method checks: small data whose last minibatch is smaller, replayed in the judging process.
TRACE_N, TRACE_LR, TRACE_BATCH, TRACE_EPOCHS = 65, 0.5, 10, 2
FAST_TRACE_N, FAST_TRACE_LR, FAST_TRACE_BATCH = 45, 0.5, 20
TOL_TRACE_PARAMS, TOL_TRACE_LOSS = 1e-4, 1e-5

DIAGNOSES = ("healthy", "lr_too_high", "lr_too_low", "no_zero_grad")
RUNS_PER_KIND = 6

CONTRACT = {
    "sigmoid": {
        "values 1 / (1 + exp(-z)), elementwise": ["test_sigmoid_values_and_shape", "test_sigmoid_extreme_inputs"],
        "keeps the shape and dtype of z (float32 and float64)": ["test_sigmoid_values_and_shape",
                                                                 "test_sigmoid_extreme_inputs"],
        "finite values and finite gradients for every finite z, including +-1000": "test_sigmoid_extreme_inputs",
        "differentiable (tensor operations on z)": "test_sigmoid_values_and_shape",
        "z is not modified": "test_sigmoid_values_and_shape",
        "the exact gradient at z = 0": "not enforced: the instructions present it as a detail; z.abs() gives "
                                       "a valid subgradient there and training is unaffected",
    },
    "bce_with_logits": {
        "one loss per example, shaped like z (n, 1), in the dtype of z": ["test_bce_values_shapes_gradients",
                                                                          "test_bce_extreme_logits"],
        "labels (n,) int64 or (n, 1) float": "test_bce_values_shapes_gradients",
        "finite for every finite z, including +-1000": "test_bce_extreme_logits",
        "gradient sigmoid(z) - y with respect to z": ["test_bce_values_shapes_gradients", "test_bce_extreme_logits"],
        "z is not modified": "test_bce_values_shapes_gradients",
    },
    "binary_accuracy": {
        "class 1 when the probability is at least 0.5 (exactly 0.5 is class 1)": "test_binary_accuracy_at_the_threshold",
        "y_hat (n, 1) or (n,), labels (n,) int64 or (n, 1) float": "test_binary_accuracy",
        "returns a Python float": ["test_binary_accuracy", "test_binary_accuracy_at_the_threshold"],
    },
    "train_logreg": {
        "uses the net, loss and updater it is given (not functions by name)": "test_train_logreg_uses_its_arguments",
        "minibatches(X, y, batch_size, generator=generator) in that order, backward() on the sum, "
        "updater([w, b], lr, batch_size) once per minibatch": "test_train_logreg_follows_the_method",
        "train_loss is the mean per-example loss over each epoch": "test_train_logreg_follows_the_method",
        "history {'epoch': [...], 'train_loss': [float per epoch]}": ["test_train_logreg_outcome",
                                                                      "test_train_logreg_follows_the_method"],
        "no sigmoid between net and loss": "test_train_logreg_outcome",
        "w and b trained in place, still leaves": "test_train_logreg_outcome",
    },
    "train_logreg_fast": {
        "returns (net, history); net outputs (m, 1) logits": "test_train_logreg_fast_outcome",
        "nn.BCEWithLogitsLoss() (the mean) and torch.optim.SGD(net.parameters(), lr=lr)":
            "test_train_logreg_fast_follows_the_method",
        "targets (n, 1) floats; a shuffling DataLoader that uses the generator given":
            ["test_train_logreg_fast_outcome", "test_train_logreg_fast_follows_the_method"],
        "train_loss is the mean loss over each epoch's examples": "test_train_logreg_fast_follows_the_method",
        "the trained model's accuracy and loss on new data": "test_train_logreg_fast_outcome",
    },
    "diagnose_training": {
        "returns one of 'healthy', 'lr_too_high', 'lr_too_low', 'no_zero_grad' (a str)":
            "test_diagnose_returns_a_label",
        "inf or NaN anywhere, or a loss that ends above its start: 'lr_too_high'": "test_diagnose_kind",
        "a gradient norm that grows (more than twice its start) while the loss does not: 'no_zero_grad'":
            "test_diagnose_kind",
        "a loss that fell by less than 10%: 'lr_too_low'": "test_diagnose_kind",
        "otherwise 'healthy'": "test_diagnose_kind",
        "runs of any length (one value per epoch)": "test_diagnose_kind",
    },
}


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def make_data(seed):
    """Blobs: X (1000, 3) float32, y (1000,) int64 for training; X_test, y_test the same for judging."""
    gen = torch.Generator().manual_seed(2000 + seed)

    def blobs():
        y = torch.arange(2).repeat_interleave(N_PER_CLASS)
        X = CENTERS[y] + torch.randn(len(y), 3, generator=gen)
        return X, y

    X, y = blobs()
    X_test, y_test = blobs()
    return X, y, X_test, y_test


def judge_logits(logits, y_test):
    """Held-out accuracy (logit >= 0, i.e. probability >= 0.5, is class 1) and mean binary cross-entropy, in float64."""
    z = logits.double().reshape(-1)
    t = y_test.double()
    accuracy = ((z >= 0).double() == t).double().mean().item()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t).item()
    return accuracy, loss


# ------------------------------------------------------------------------------------------ probes
def probe_elementwise(ns, name, z, y=None):
    """Value and gradient (of the sum) of the student's ``name`` at z (and labels y)."""
    import torch
    fn = ns.require(name)
    z = z.clone().requires_grad_()
    z_before = z.detach().clone()
    out = fn(z) if y is None else fn(z, y)
    result = {"value": out.detach().clone() if isinstance(out, torch.Tensor) else out,
              "graph": isinstance(out, torch.Tensor) and out.requires_grad,
              "unchanged": torch.equal(z.detach(), z_before)}
    if result["graph"]:
        out.sum().backward()
        result["grad"] = None if z.grad is None else z.grad.clone()
    return result


def probe_accuracy(ns, y_hat, y):
    import torch
    value = ns.require("binary_accuracy")(y_hat, y)
    if isinstance(value, float):
        return {"kind": "float", "numel": 1, "value": float(value)}
    if isinstance(value, torch.Tensor):
        return {"kind": "tensor", "numel": value.numel(),
                "value": float(value.reshape(-1)[0]) if value.numel() else None}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "number", "numel": 1, "value": float(value)}
    return {"kind": type(value).__name__, "numel": 0, "value": None}


_REFERENCE_PIECES = '''
def ref_linreg(X, w, b):
    return X @ w + b

def ref_loss(z, y):
    y = y.reshape(z.shape).to(z.dtype)
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")

def ref_sgd(params, lr, batch_size):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad / batch_size
                p.grad.zero_()
'''


def probe_train_logreg(ns, X, y, X_test, lr, num_epochs, batch_size, seed, pieces):
    import torch
    train = ns.require("train_logreg")
    scope = {"torch": torch}
    exec(pieces, scope)  # reference model, loss and updater: this task judges the loop alone
    torch.manual_seed(seed)
    w = torch.normal(0.0, 0.01, size=(X.shape[1], 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    w_start, b_start = w.detach().clone(), b.detach().clone()
    history = train(w, b, X, y, lr, num_epochs, batch_size, net=scope["ref_linreg"], loss=scope["ref_loss"],
                    updater=scope["ref_sgd"], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = X_test @ w + b
    out = {"logits": logits.clone(), "leaf": w.is_leaf and b.is_leaf,
           "moved": not (torch.equal(w.detach(), w_start) and torch.equal(b.detach(), b_start))}
    out["history_type"] = type(history).__name__
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def probe_train_fast(ns, X, y, X_test, lr, num_epochs, batch_size, seed):
    import torch
    train = ns.require("train_logreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"pair": False, "type": type(result).__name__}
    net, history = result
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        logits = net(X_test)
    out = {"pair": True, "logits": logits.detach().clone()}
    out["history_type"] = type(history).__name__
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def make_trace_data(seed, n):
    """Small overlapping blobs for the method checks: X (n, 3) float32, y (n,) int64."""
    gen = torch.Generator().manual_seed(6000 + seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    X = 0.5 * CENTERS[y] + torch.randn(n, 3, generator=gen)
    return X, y


def probe_train_logreg_traced(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces):
    """train_logreg with recording stand-ins for net, loss and updater; returns w, b, history and the calls."""
    import torch
    train = ns.require("train_logreg")
    scope = {"torch": torch}
    exec(pieces, scope)
    calls = {"net": 0, "loss": 0, "updater": 0}

    def net(X, w, b):
        calls["net"] += 1
        return scope["ref_linreg"](X, w, b)

    def loss(z, y):
        calls["loss"] += 1
        return scope["ref_loss"](z, y)

    def updater(params, lr, batch_size):
        calls["updater"] += 1
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
    """train_logreg_fast with torch.optim.SGD replaced by a subclass that records the starting parameters."""
    import torch
    train = ns.require("train_logreg_fast")
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
        logits = net(X_eval)
    out = {"pair": True, "logits": logits.detach().clone(), "created": created,
           "history_type": type(history).__name__}
    if isinstance(history, dict):
        losses = history.get("train_loss")
        out["keys"] = sorted(str(k) for k in history)
        if isinstance(losses, (list, tuple)):
            out["train_loss"] = [float(v) for v in losses]
    return out


def probe_diagnose(ns, runs):
    """diagnose_training(history) for each run; returns each label (or the type name of what came back)."""
    diagnose = ns.require("diagnose_training")
    labels = []
    for run in runs:
        history = {"epoch": list(range(1, len(run["train_loss"]) + 1)),
                   "train_loss": [float(v) for v in run["train_loss"]],
                   "grad_norm": [float(v) for v in run["grad_norm"]]}
        label = diagnose(history)
        labels.append(label if isinstance(label, str) else f"a {type(label).__name__}")
    return labels


# ------------------------------------------------------------------------------------------ helpers
def _check_history(out, num_epochs, what):
    expect(out.get("history_type") == "dict",
           f"{what} should return a history dict {{'epoch': [...], 'train_loss': [...]}}, but it returned "
           f"a {out.get('history_type')}.")
    losses = out.get("train_loss")
    expect(losses is not None, f"The history of {what} should have a key 'train_loss' holding a list of "
                               f"numbers (it has keys {out.get('keys')}).")
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect(all(math.isfinite(v) for v in losses),
           f"The training loss of {what} became inf or NaN: {losses}.")
    expect(losses[-1] <= MAX_TRAIN_LOSS,
           f"After {num_epochs} epochs the training loss reported by {what} is {losses[-1]:.4g}; a correct "
           f"solution reaches below {MAX_TRAIN_LOSS:g} on this data (tolerance included). Is the loss "
           f"computed once, from the logits?")


def _check_outcome(logits, y_test, what, settings):
    logits = expect_tensor(logits, f"the logits of the model trained by {what}")
    expect(logits.numel() == len(y_test), f"The model trained by {what} should return one logit per example: "
                                          f"{len(y_test)} for {len(y_test)} inputs, not {logits.numel()}.")
    if not torch.isfinite(logits).all():
        fail(f"The model trained by {what} returns inf or NaN: training diverged.")
    accuracy, loss = judge_logits(logits, y_test)
    expect(accuracy >= MIN_ACCURACY,
           f"After training ({settings}) the model's accuracy on new data is {accuracy:.3f}; a correct "
           f"solution reaches at least {MIN_ACCURACY:g} (tolerance included). The model should output "
           f"logits (no sigmoid inside).")
    expect(loss <= MAX_TEST_LOSS,
           f"After training ({settings}) the binary cross-entropy of the model's logits on new data is "
           f"{loss:.3f}; a correct solution stays below {MAX_TEST_LOSS:g} (tolerance included). Is the "
           f"sigmoid applied exactly once, inside the loss?")


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
            z = X_batch @ w + b
            l = torch.nn.functional.binary_cross_entropy_with_logits(z, y_batch.reshape(z.shape).to(z.dtype),
                                                                     reduction="none")
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


def replay_fast(X, targets, weight, bias, lr, num_epochs, batch_size, seed):
    """nn.Linear from (weight, bias) trained with BCEWithLogitsLoss and SGD; returns (net, train_loss per epoch)."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    net = nn.Linear(weight.shape[1], 1)
    with torch.no_grad():
        net.weight.copy_(weight)
        net.bias.copy_(bias.reshape(-1))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(X, targets), batch_size=batch_size, shuffle=True,
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


def make_runs(kind, seed):
    """RUNS_PER_KIND training runs of one kind: [{"train_loss": (T,) float64, "grad_norm": (T,) float64}]."""
    gen = torch.Generator().manual_seed(7000 + 100 * DIAGNOSES.index(kind) + seed)

    def uniform(low, high):
        return low + (high - low) * torch.rand((), generator=gen, dtype=torch.float64).item()

    def noise(T, scale):
        return 1 + scale * torch.randn(T, generator=gen, dtype=torch.float64).clamp(-3, 3)

    runs = []
    for i in range(RUNS_PER_KIND):
        T = int(torch.randint(8, 31, (), generator=gen))
        t = torch.arange(T, dtype=torch.float64)
        L0, G0 = uniform(0.5, 1.5), uniform(0.3, 3.0)
        if kind == "healthy":
            floor = L0 * uniform(0.05, 0.4)
            loss = (floor + (L0 - floor) * torch.exp(-t / uniform(0.8, 2.5))) * noise(T, 0.02)
            grad = G0 * torch.exp(-t / uniform(1.0, 3.0)) * noise(T, 0.1)
        elif kind == "lr_too_low":
            loss = L0 * (1 - uniform(0.02, 0.06) * t / (T - 1)) * noise(T, 0.002)
            grad = G0 * (1 - uniform(0.0, 0.08) * t / (T - 1)) * noise(T, 0.01)
        elif kind == "no_zero_grad":
            low = uniform(0.3, 0.6)
            loss = L0 * (low + (0.85 - low) * 0.5 * (1 + torch.sin(t * uniform(0.5, 1.5))))
            loss[0] = L0
            grad = G0 * (1 + uniform(0.9, 1.1) * t) * noise(T, 0.05)
        elif i % 2 == 0:   # lr too high: the loss jumps around and climbs
            loss = L0 * (1 + uniform(0.1, 0.4) * t) * (1 + 0.3 * (noise(T, 1.0) - 1).abs())
            loss[0] = L0
            grad = G0 * (1 + uniform(0.3, 1.0) * t) * (1 + 0.3 * (noise(T, 1.0) - 1).abs())
            grad[0] = G0
        else:              # lr too high: blows up to inf, then NaN
            factor = uniform(2.0, 10.0)
            loss = L0 * factor ** t
            grad = G0 * factor ** t
            blow = int(torch.randint(3, T - 1, (), generator=gen))
            loss[blow], grad[blow] = math.inf, math.inf
            loss[blow + 1:], grad[blow + 1:] = math.nan, math.nan
        runs.append({"train_loss": loss, "grad_norm": grad})
    return runs


# ------------------------------------------------------------------------------------------ graders
EXTREMES = [-1000.0, -100.0, -50.0, -20.0, -5.0, -1.0, -1e-3, 1e-3, 1.0, 5.0, 20.0, 50.0, 100.0, 1000.0]


@pytest.mark.sigmoid
def test_sigmoid_values_and_shape(student):
    z = torch.randn(37, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 4
    z[0, 0] = 0.0
    out = student.probe(probe_elementwise, "sigmoid", z, label="`sigmoid`")
    value = expect_tensor(out["value"], "sigmoid(z) for z of shape (37, 3), float64", shape=(37, 3),
                          dtype=torch.float64)
    expect_close(value, torch.sigmoid(z), "sigmoid(z) in float64", rtol=1e-10, atol=1e-12)
    expect(out["unchanged"], "sigmoid should not change its input z.")
    expect(out["graph"] and out.get("grad") is not None, "sigmoid should be differentiable: use tensor "
                                                         "operations on z only.")
    mask = z != 0   # at exactly 0, exp(-|z|) formulations have a valid but different subgradient
    s = torch.sigmoid(z)
    expect_close(out["grad"][mask], (s * (1 - s))[mask], "the gradient of sum(sigmoid(z)) in float64",
                 rtol=1e-8, atol=1e-12)


@pytest.mark.sigmoid
def test_sigmoid_extreme_inputs(student):
    z = torch.tensor(EXTREMES, dtype=torch.float32)
    out = student.probe(probe_elementwise, "sigmoid", z, label="`sigmoid`")
    value = expect_tensor(out["value"], "sigmoid(z) for float32 z", shape=(len(EXTREMES),), dtype=torch.float32)
    zs = ", ".join(f"{v:g}" for v in EXTREMES)
    expect(torch.isfinite(value).all(), f"sigmoid(z) is inf or NaN for some z in [{zs}] (float32).")
    expect_close(value, torch.sigmoid(z.double()), f"sigmoid(z) for z in [{zs}] (float32)", rtol=1e-5, atol=1e-7)
    grad = out.get("grad")
    expect(grad is not None, "sigmoid should be differentiable: use tensor operations on z only.")
    expect(torch.isfinite(grad).all(),
           f"The gradient of sigmoid is inf or NaN at some z in [{zs}] (float32): exp overflows to inf, and "
           f"autograd multiplies inf by 0. Only ever exponentiate numbers <= 0.")
    s = torch.sigmoid(z.double())
    expect_close(grad, s * (1 - s), f"the gradient of sigmoid at z in [{zs}] (float32)", rtol=1e-4, atol=1e-7)


@pytest.mark.bce_with_logits
@pytest.mark.parametrize("labels", ["(n,) int64", "(n, 1) float"])
def test_bce_values_shapes_gradients(student, labels):
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(37, 1, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (37,), generator=gen)
    sent = y if labels == "(n,) int64" else y.double().reshape(-1, 1)
    out = student.probe(probe_elementwise, "bce_with_logits", z, sent, label="`bce_with_logits`")
    what = f"bce_with_logits(z, y) with z (37, 1) float64 and y {labels.replace('(n', '(37')}"
    value = expect_tensor(out["value"], what, shape=(37, 1), dtype=torch.float64)
    t = y.double().reshape(-1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none")
    expect_close(value, expected, what + " (one loss per example)", rtol=1e-8, atol=1e-10)
    expect(out["unchanged"], "bce_with_logits should not change its input z.")
    expect(out["graph"] and out.get("grad") is not None, "The loss should be differentiable with respect to z.")
    expect_close(out["grad"], torch.sigmoid(z) - t, "the gradient of the summed loss with respect to z "
                 "(should be sigmoid(z) - y)", rtol=1e-8, atol=1e-10)


@pytest.mark.bce_with_logits
def test_bce_extreme_logits(student):
    z = torch.tensor(EXTREMES * 2, dtype=torch.float32).reshape(-1, 1)
    y = torch.tensor([0] * len(EXTREMES) + [1] * len(EXTREMES))
    out = student.probe(probe_elementwise, "bce_with_logits", z, y, label="`bce_with_logits`")
    zs = ", ".join(f"{v:g}" for v in EXTREMES)
    value = expect_tensor(out["value"], "bce_with_logits(z, y) for float32 logits", shape=(2 * len(EXTREMES), 1),
                          dtype=torch.float32)
    expect(torch.isfinite(value).all(),
           f"bce_with_logits is inf or NaN for some logits in [{zs}] with labels 0 and 1 (float32): "
           f"log(sigmoid(z)) underflows to log(0), and exp of a large number overflows. Use the form "
           f"max(z, 0) - z*y + log(1 + exp(-|z|)).")
    t = y.double().reshape(-1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.double(), t, reduction="none")
    expect_close(value, expected, f"bce_with_logits for logits in [{zs}] (float32)", rtol=1e-5, atol=1e-5)
    grad = out.get("grad")
    expect(grad is not None, "The loss should be differentiable with respect to z.")
    expect(torch.isfinite(grad).all(), f"The gradient of bce_with_logits is inf or NaN for some logits in "
                                       f"[{zs}] (float32).")
    expect_close(grad, torch.sigmoid(z.double()) - t, f"the gradient of bce_with_logits for logits in [{zs}] "
                 f"(float32)", rtol=1e-4, atol=1e-6)


def _accuracy_case(shape_p, labels):
    gen = torch.Generator().manual_seed(8)
    p = torch.rand(37, generator=gen) * 0.98 + 0.01
    p[p.sub(0.5).abs() < 1e-3] = 0.3   # no probability right at the threshold
    y = torch.randint(0, 2, (37,), generator=gen)
    expected = ((p >= 0.5).long() == y).double().mean().item()
    sent_p = p.reshape(-1, 1) if shape_p == "(n, 1)" else p
    sent_y = y if labels == "(n,) int64" else y.float().reshape(-1, 1)
    return sent_p, sent_y, expected


@pytest.mark.binary_accuracy
@pytest.mark.parametrize("shape_p,labels", [("(n, 1)", "(n,) int64"), ("(n, 1)", "(n, 1) float"),
                                            ("(n,)", "(n,) int64")])
def test_binary_accuracy(student, shape_p, labels):
    p, y, expected = _accuracy_case(shape_p, labels)
    out = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = (f"binary_accuracy(y_hat, y) with probabilities y_hat {shape_p.replace('(n', '(37')} and labels "
            f"y {labels.replace('(n', '(37')}")
    expect(out["numel"] == 1 and out["value"] is not None,
           f"{what} should return one number (a float), not a {out['kind']}"
           + (f" with {out['numel']} elements" if out["kind"] == "tensor" else "") + ".")
    expect(abs(out["value"] - expected) <= 1e-6,
           f"{what} is {out['value']:.4f}, but the fraction of examples whose class at threshold 0.5 matches "
           f"the label is {expected:.4f} (tolerance 1e-6).")
    expect(out["kind"] == "float",
           f"{what} should return a Python float, but it returned a {out['kind']} holding the right value: "
           f"turn a one-element tensor into a number with .item().")


@pytest.mark.binary_accuracy
def test_binary_accuracy_at_the_threshold(student):
    p = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.4999], dtype=torch.float64).reshape(-1, 1)
    y = torch.tensor([1, 1, 1, 1, 0, 0, 1, 0])
    expected = 7 / 8
    out = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = "binary_accuracy(y_hat, y) with probabilities of exactly 0.5 among y_hat"
    expect(out["numel"] == 1 and out["value"] is not None, f"{what} should return one number (a float), not a "
                                                            f"{out['kind']}.")
    expect(abs(out["value"] - expected) <= 1e-6,
           f"{what} is {out['value']:.4f}, but it should be {expected:.4f} (tolerance 1e-6): a probability of "
           f"exactly 0.5 counts as class 1 (the model predicts class 1 when its probability is at least 0.5).")
    expect(out["kind"] == "float", f"{what} should return a Python float, not a {out['kind']}.")


@pytest.mark.train_logreg
def test_train_logreg_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_logreg, X, y, X_test, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed,
                        _REFERENCE_PIECES, label="`train_logreg`")
    expect(out["leaf"], "After train_logreg, w and b should still be leaf tensors.")
    expect(out["moved"], "train_logreg did not change the w and b it was given: the training loop must update "
                         "those very tensors (through updater), not new ones.")
    _check_history(out, MANUAL_EPOCHS, "train_logreg")
    _check_outcome(out["logits"], y_test, "train_logreg",
                   f"lr {MANUAL_LR}, batch size {MANUAL_BATCH}, {MANUAL_EPOCHS} epochs")


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_logreg_fast`")
    expect(out["pair"], f"train_logreg_fast should return a tuple (net, history), not a {out.get('type')}.")
    _check_history(out, FAST_EPOCHS, "train_logreg_fast")
    _check_outcome(out["logits"], y_test, "train_logreg_fast",
                   f"lr {FAST_LR}, batch size {FAST_BATCH}, {FAST_EPOCHS} epochs")



def _traced_manual(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, TRACE_N)
    gen = torch.Generator().manual_seed(8000 + seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=gen), torch.zeros(1)
    out = student.probe(probe_train_logreg_traced, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed,
                        _REFERENCE_PIECES, label="`train_logreg`")
    return X, y, w0, b0, seed, out


@pytest.mark.train_logreg
def test_train_logreg_uses_its_arguments(student):
    _, _, _, _, _, out = _traced_manual(student)
    batches = TRACE_EPOCHS * math.ceil(TRACE_N / TRACE_BATCH)
    calls = out["calls"]
    setting = f"{TRACE_EPOCHS} epochs over {TRACE_N} examples in minibatches of {TRACE_BATCH}: {batches} minibatches"
    for name in ("net", "loss", "updater"):
        expect(calls[name] >= batches,
               f"train_logreg should compute every step with the `{name}` it is given (an argument), but with "
               f"{setting}, it called `{name}` {calls[name]} times. Use the arguments net, loss and updater "
               f"rather than your own functions by name.")
    expect(calls["updater"] == batches,
           f"train_logreg should call updater exactly once per minibatch ({setting}), but it called it "
           f"{calls['updater']} times.")


@pytest.mark.train_logreg
def test_train_logreg_follows_the_method(student):
    X, y, w0, b0, seed, out = _traced_manual(student)
    got = torch.cat([expect_tensor(out["w"], "w after train_logreg", shape=(3, 1)).reshape(-1),
                     expect_tensor(out["b"], "b after train_logreg", shape=(1,)).reshape(-1)]).double()
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
           f"backward() on the sum of the per-example losses of the logits, and step once per minibatch.")
    expect_history_matches(out, losses, TRACE_EPOCHS, "train_logreg",
                           "the mean per-example loss over that epoch's minibatches")


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(9000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_logreg_fast`")
    expect(out["pair"], f"train_logreg_fast should return a tuple (net, history), not a {out.get('type')}.")
    created = out["created"]
    weight, bias = linear_start(created, 3, "train_logreg_fast")
    opts = created[-1]
    expect(opts["lr"] == FAST_TRACE_LR and opts["momentum"] == 0 and opts["weight_decay"] == 0,
           f"train_logreg_fast should use torch.optim.SGD(net.parameters(), lr=lr) with the lr it is given "
           f"({FAST_TRACE_LR}) and nothing else; it used lr={opts['lr']:g}, momentum={opts['momentum']:g}, "
           f"weight_decay={opts['weight_decay']:g}.")
    net, losses = replay_fast(X, y.float().reshape(-1, 1), weight, bias, FAST_TRACE_LR, TRACE_EPOCHS,
                              FAST_TRACE_BATCH, seed)
    with torch.no_grad():
        want = net(X_eval).double()
    got = expect_tensor(out["logits"], "the trained net's logits for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's logits differ by up to {worst:.3g} from what the loop of the "
           f"instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, targets), batch_size, shuffle=True, generator=generator), "
           f"nn.BCEWithLogitsLoss() with its default mean, gradients cleared before each backward(), one "
           f"optimizer.step() per batch.")
    expect_history_matches(out, losses, TRACE_EPOCHS, "train_logreg_fast",
                           "the mean loss over that epoch's examples")


@pytest.mark.diagnose_training
def test_diagnose_returns_a_label(student):
    runs = [run for kind in DIAGNOSES for run in make_runs(kind, grading_seed())[:1]]
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    for label in labels:
        expect(label in DIAGNOSES, f"diagnose_training should return one of the strings "
                                   f"{', '.join(repr(d) for d in DIAGNOSES)}, but it returned {label!r}.")


@pytest.mark.diagnose_training
@pytest.mark.parametrize("kind", DIAGNOSES)
def test_diagnose_kind(student, kind):
    runs = make_runs(kind, grading_seed())
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    wrong = [(run, label) for run, label in zip(runs, labels) if label != kind]
    if wrong:
        run, label = wrong[0]

        def show(values):
            shown = ", ".join(f"{v:.3g}" for v in values[:6].tolist())
            return f"[{shown}, ...]" if len(values) > 6 else f"[{shown}]"

        fail(f"diagnose_training labelled {len(wrong)} of {len(runs)} runs of kind {kind!r} wrongly; for example "
             f"a run of {len(run['train_loss'])} epochs with train_loss {show(run['train_loss'])} (last "
             f"{run['train_loss'][-1].item():.3g}) and grad_norm {show(run['grad_norm'])} (last "
             f"{run['grad_norm'][-1].item():.3g}) got {label!r}. Check the order of your rules and that inf and "
             f"NaN are caught (every comparison with NaN is False).")
