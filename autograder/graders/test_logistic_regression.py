"""Graders for 04-logistic-regression: stable sigmoid, stable binary cross-entropy, accuracy, training.

Training thresholds (benchmarks/calibrate_logistic_regression.py, 20 seeded runs of the reference on the
graders' data: two Gaussian blobs in d = 3, centres (1, -1, 0.5) and (-1, 1, -0.5), spread 1, 500 training
points per class, 500 held-out points per class, see ``make_data``):
- manual loop (lr 0.1, batch 10, 3 epochs, reference model/loss/updater injected): held-out accuracy
  0.911 .. 0.952 (median 0.930), held-out loss 0.151 .. 0.206, last training loss 0.157 .. 0.201;
- fast (same budget): accuracy 0.912 .. 0.952, held-out loss 0.151 .. 0.205, training loss 0.157 .. 0.201.
The graders inject the stand-ins of ``standins`` with TWIST instead of the plain model/loss/updater and
judge the model they train (the twisted net with the trained w and b); the reference's loop with them, over
the same 20 seeds: accuracy 0.911 .. 0.950 (median 0.928), held-out loss 0.147 .. 0.206, last training loss
0.161 .. 0.208.
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
The manual loop gets stand-ins for net, loss and updater that are deliberately no task's answer
(``standins``: the model scales its features and shifts its logits, each example's loss is weighted by its
class, each parameter's step has a factor, all chosen here in TWIST); the replay runs the very same functions.
With TWIST over 20 seeds the reference is 0 away from the replay and another order of the minibatches moves
w and b by 1.4e-2 or more; the margins below are those of benchmarks/calibrate_logistic_regression.py (plain
pieces).
Margins over 20 grading seeds (benchmarks/calibrate_logistic_regression.py): the reference is at most 1.2e-7
away (manual) and 0 (fast); minibatches in another order move w and b by 1.5e-2 or more, an epoch loss
averaged over batch means is off by 5.9e-3 relative or more, momentum 0.9 moves the logits by 1.7 or more.

The judge decides everything, from data, as in 03: probes bring back what the student's code returned and
what a caller sees afterwards (values, the input z after the call, the gradient a backward() leaves, the w and
b the caller holds after training and the gradients a backward() then leaves on them), never a verdict
computed next to the student's code; no correct stand-in is sent into the student's process.

Seeds and history as in 03: the global random state is seeded to another value than the generator passed;
'epoch' must be [1, ..., num_epochs] and 'train_loss' Python floats. bce_with_logits is also judged with float
labels of shape (n,) in float64 for float32 logits (the loss keeps z's dtype).

Class at the threshold: a probability of exactly 0.5 (a logit of exactly 0) is class 1, as the
instructions say; binary_accuracy is checked there, and the judge's own accuracy uses logit >= 0.

diagnose_training: judged on runs made here (seeded by COURSE_GRADING_SEED, with noise), 6 per kind,
8 to 30 epochs each: healthy (loss falls by more than half and flattens, gradient norm shrinks tenfold or
more), learning rate too low (loss falls by 2-6% in all, gradient norm steady within 10%), learning rate
too high (loss and gradient norm jumping around and climbing, by 10-40% and 30-100% of their start per
epoch; or loss and gradient norm growing 2-10x per epoch until inf and NaN), gradients never zeroed
(loss falls to and swings within 30-85% of its start, the norm of the accumulated gradient grows about
linearly to 8-30x its start). The order of the rules is judged on 6 more runs (``make_order_runs``): gradients
never zeroed with a small learning rate, the loss falling by only 2-6% while the norm grows to 8-30x, which
the stated order labels 'no_zero_grad' and a slow-loss rule checked first labels 'lr_too_low'. The rules of the
instructions have wide margins on every run: noise of 0.2% on the losses of slow runs, 2% on healthy
ones, 5-10% on gradient norms.
"""
import inspect
import math
import os

import pytest
import torch

from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.tasks import Task
from autograder.judge.training import (expect_epochs, expect_history_matches, expect_trained_in_place,
                                       history_losses, kind, linear_start)
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
        "z is not modified": ["test_sigmoid_values_and_shape", "test_sigmoid_extreme_inputs"],
        "the exact gradient at z = 0": "not enforced: the instructions present it as a detail; z.abs() gives "
                                       "a valid subgradient there and training is unaffected",
    },
    "bce_with_logits": {
        "one loss per example, shaped like z (n, 1), in the dtype of z": ["test_bce_values_shapes_gradients",
                                                                          "test_bce_extreme_logits"],
        "labels (n,) int64 or (n, 1) float": "test_bce_values_shapes_gradients",
        "float labels of shape (n,), in another dtype than z (float64 labels, float32 logits): the loss keeps "
        "z's dtype": "test_bce_values_shapes_gradients",
        "finite for every finite z, including +-1000": "test_bce_extreme_logits",
        "gradient sigmoid(z) - y with respect to z": ["test_bce_values_shapes_gradients", "test_bce_extreme_logits"],
        "z is not modified": ["test_bce_values_shapes_gradients", "test_bce_extreme_logits"],
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
        "the generator given drives the order (the global RNG is seeded to another value than the generator)":
            "test_train_logreg_follows_the_method",
        "train_loss is the mean per-example loss over each epoch": "test_train_logreg_follows_the_method",
        "history {'epoch': [...], 'train_loss': [float per epoch]}": ["test_train_logreg_outcome",
                                                                      "test_train_logreg_follows_the_method"],
        "history['epoch'] is [1, ..., num_epochs]; train_loss holds Python floats (.item()), not tensors":
            ["test_train_logreg_outcome", "test_train_logreg_follows_the_method"],
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
        "history {'epoch': [1, ..., num_epochs], 'train_loss': [Python float per epoch]}":
            ["test_train_logreg_fast_outcome", "test_train_logreg_fast_follows_the_method"],
    },
    "diagnose_training": {
        "returns one of 'healthy', 'lr_too_high', 'lr_too_low', 'no_zero_grad' (a str)":
            "test_diagnose_returns_a_label",
        "inf or NaN anywhere, or a loss that ends above its start: 'lr_too_high'": "test_diagnose_kind",
        "a gradient norm that grows (more than twice its start) while the loss does not: 'no_zero_grad'":
            "test_diagnose_kind",
        "a loss that fell by less than 10%: 'lr_too_low'": "test_diagnose_kind",
        "the rules in the stated order: a growing gradient norm with a loss that fell by less than 10% is "
        "'no_zero_grad', not 'lr_too_low'": "test_diagnose_rules_in_order",
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
# Probes only call the student's code and bring back data (values, gradients, what came back); every verdict
# is made by the graders below, in the judging process.
def probe_elementwise(ns, name, z, y=None):
    """The student's ``name`` at z (and labels y): its value, z as it is afterwards, the gradient of the sum."""
    import torch
    fn = ns.require(name)
    z = z.clone().requires_grad_()
    out = fn(z) if y is None else fn(z, y)
    after = z.detach().clone()
    try:
        out.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # not connected to z: its gradient stays None
    return {"value": out, "z_after": after, "grad": z.grad}


def probe_accuracy(ns, y_hat, y):
    """What binary_accuracy(y_hat, y) returns."""
    return ns.require("binary_accuracy")(y_hat, y)


def standins(twist, calls=None):
    """(net, loss, updater) for train_logreg, shaped like the lesson's but each with a twist chosen by the judge,
    so that none is an answer to a task: the model reads its features scaled and shifts its logits, each
    example's binary cross-entropy is weighted by its class (weights[label]), and each parameter's step has a
    factor of its own (w: factors[0], b: factors[1]). The judge's replay calls these very functions; the probes
    get their source. ``calls`` (optional) counts the calls of each."""
    import torch
    scale, shift, weights, factors = twist["scale"], twist["shift"], twist["weights"], twist["factors"]

    def net(X, w, b):
        if calls is not None:
            calls["net"] += 1
        return torch.matmul(X, w * scale.to(w.dtype)) + b + shift

    def loss(z, y):
        if calls is not None:
            calls["loss"] += 1
        t = y.reshape(z.shape).to(z.dtype)
        weight = weights[0] + (weights[1] - weights[0]) * t
        return weight * torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none")

    def updater(params, lr, batch_size):
        if calls is not None:
            calls["updater"] += 1
        with torch.no_grad():
            for p in params:
                factor = factors[0] if p.dim() == 2 else factors[1]
                p.sub_(p.grad * (factor * lr / batch_size))
                p.grad.zero_()

    return net, loss, updater


def probe_train_logreg(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist, probe_grads):
    """train_logreg from (w0, b0) with the stand-ins of ``pieces``: the w and b the caller holds afterwards, the
    history, the calls of the stand-ins, and the gradients that the backward() of sum(g_w * w) + sum(g_b * b)
    leaves on w and b after training."""
    import torch
    train = ns.require("train_logreg")
    scope = {}
    exec(pieces, scope)
    calls = {"net": 0, "loss": 0, "updater": 0}
    net, loss, updater = scope["standins"](twist, calls)
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    torch.manual_seed(seed + 104729)    # not the generator's seed: the global state must not stand in for it
    history = train(w, b, X, y, lr, num_epochs, batch_size, net=net, loss=loss, updater=updater,
                    generator=torch.Generator().manual_seed(seed))
    out = {"w": w.detach().clone(), "b": b.detach().clone(), "history": history, "calls": calls}
    w.grad, b.grad = None, None
    try:
        ((w * probe_grads[0]).sum() + (b * probe_grads[1]).sum()).backward()
    except RuntimeError:
        pass                            # neither requires grad any more: both gradients stay None
    out["grads"] = [w.grad, b.grad]
    return out


def probe_train_fast(ns, X, y, X_test, lr, num_epochs, batch_size, seed):
    """train_logreg_fast: the trained net's logits for X_test and the history, or the type name of what came
    back when it is not two things."""
    import torch
    train = ns.require("train_logreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    try:
        net, history = result
    except (TypeError, ValueError):
        return {"returned": type(result).__name__}   # not two things: only its name can come back
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        logits = net(X_test)
    return {"logits": logits, "history": history}


def make_trace_data(seed, n):
    """Small overlapping blobs for the method checks: X (n, 3) float32, y (n,) int64."""
    gen = torch.Generator().manual_seed(6000 + seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    X = 0.5 * CENTERS[y] + torch.randn(n, 3, generator=gen)
    return X, y


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
    try:
        net, history = result
    except (TypeError, ValueError):
        return {"returned": type(result).__name__, "created": created}
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        logits = net(X_eval)
    return {"logits": logits, "history": history, "created": created}


def probe_diagnose(ns, runs):
    """What diagnose_training(history) returns for each run."""
    diagnose = ns.require("diagnose_training")
    labels = []
    for run in runs:
        history = {"epoch": list(range(1, len(run["train_loss"]) + 1)),
                   "train_loss": [float(v) for v in run["train_loss"]],
                   "grad_norm": [float(v) for v in run["grad_norm"]]}
        labels.append(diagnose(history))
    return labels


# ------------------------------------------------------------------------------------------ helpers
# The stand-ins' twists (see ``standins``) for the manual loop, and PLAIN: no twist, the pieces of the lesson.
TWIST = {"scale": torch.tensor([[1.2], [0.9], [1.1]]), "shift": 0.3, "weights": [0.9, 1.2], "factors": [1.2, 0.8]}
PLAIN = {"scale": torch.ones(3, 1), "shift": 0.0, "weights": [1.0, 1.0], "factors": [1.0, 1.0]}
PIECES = inspect.getsource(standins)
# What the judge asks a loss's backward() to leave in w.grad and b.grad after training (w (3, 1), b (1,)).
PROBE_GRADS = [torch.tensor([[0.5], [-1.25], [2.0]]), torch.tensor([0.75])]


def _check_history(history, num_epochs, what):
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect_epochs(history, num_epochs, what)
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


def _fast_parts(out, what):
    """The trained net's logits and the history from a fast probe, or fail when what came back is not a pair."""
    expect("returned" not in out, f"{what} should return two things, a tuple (net, history), but it returned a "
                                  f"{out.get('returned')}.")
    return out["logits"], out["history"]


def _check_input_unchanged(out, z, what):
    after = out["z_after"]
    expect(after.dtype == z.dtype and tuple(after.shape) == tuple(z.shape) and torch.equal(after, z),
           f"{what} should not change its input z, but after the call z holds other values: compute new "
           f"tensors instead of changing z in place (through .data or under torch.no_grad()).")


def replay_manual(X, y, w0, b0, lr, num_epochs, batch_size, seed, last_divisor, twist=PLAIN):
    """The loop of the instructions, in the judging process, with ``standins(twist)`` as net, loss and updater:
    (w, b, train_loss per epoch).

    ``last_divisor``: what the step of a smaller last minibatch is divided by (``"batch_size"`` as the
    instructions write it, or ``"size"``, the minibatch's own size, as a mean loss gives it).
    """
    net, loss, updater = standins(twist)
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=gen):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, batch_size if last_divisor == "batch_size" else len(X_batch))
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


def make_order_runs(seed):
    """RUNS_PER_KIND runs where the order of the rules decides: gradients never zeroed with a small learning
    rate. The loss falls steadily but by only 2-6% in all (the 'lr_too_low' rule holds too), the gradient norm
    grows about linearly to 8-30x its start: checked in the stated order, 'no_zero_grad'."""
    gen = torch.Generator().manual_seed(7900 + seed)

    def uniform(low, high):
        return low + (high - low) * torch.rand((), generator=gen, dtype=torch.float64).item()

    runs = []
    for _ in range(RUNS_PER_KIND):
        T = int(torch.randint(8, 31, (), generator=gen))
        t = torch.arange(T, dtype=torch.float64)
        L0, G0 = uniform(0.5, 1.5), uniform(0.3, 3.0)
        loss = L0 * (1 - uniform(0.02, 0.06) * t / (T - 1)) * (1 + 0.002 * torch.randn(T, generator=gen,
                                                                                       dtype=torch.float64).clamp(-3, 3))
        grad = G0 * (1 + uniform(0.9, 1.1) * t) * (1 + 0.05 * torch.randn(T, generator=gen,
                                                                         dtype=torch.float64).clamp(-3, 3))
        runs.append({"train_loss": loss, "grad_norm": grad})
    return runs


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
    _check_input_unchanged(out, z, "sigmoid")
    expect(out["grad"] is not None, "sigmoid should be differentiable: use tensor operations on z only.")
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
    _check_input_unchanged(out, z, "sigmoid")
    grad = out["grad"]
    expect(grad is not None, "sigmoid should be differentiable: use tensor operations on z only.")
    expect(torch.isfinite(grad).all(),
           f"The gradient of sigmoid is inf or NaN at some z in [{zs}] (float32): exp overflows to inf, and "
           f"autograd multiplies inf by 0. Only ever exponentiate numbers <= 0.")
    s = torch.sigmoid(z.double())
    expect_close(grad, s * (1 - s), f"the gradient of sigmoid at z in [{zs}] (float32)", rtol=1e-4, atol=1e-7)


BCE_CASES = {  # labels: (how they are sent, dtype of z)
    "(n,) int64": (lambda y: y, torch.float64),
    "(n, 1) float64": (lambda y: y.double().reshape(-1, 1), torch.float64),
    "(n,) float64, z float32": (lambda y: y.double(), torch.float32),
}


@pytest.mark.bce_with_logits
@pytest.mark.parametrize("labels", sorted(BCE_CASES))
def test_bce_values_shapes_gradients(student, labels):
    make_labels, z_dtype = BCE_CASES[labels]
    gen = torch.Generator().manual_seed(7)
    z = (torch.randn(37, 1, generator=gen, dtype=torch.float64) * 3).to(z_dtype)
    y = torch.randint(0, 2, (37,), generator=gen)
    sent = make_labels(y)
    out = student.probe(probe_elementwise, "bce_with_logits", z, sent, label="`bce_with_logits`")
    what = (f"bce_with_logits(z, y) with z (37, 1) {str(z_dtype).replace('torch.', '')} and y "
            f"{tuple(sent.shape)} {str(sent.dtype).replace('torch.', '')}")
    value = expect_tensor(out["value"], what + " (in the dtype of z)", shape=(37, 1), dtype=z_dtype)
    t = y.double().reshape(-1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.double(), t, reduction="none")
    tol = {"rtol": 1e-8, "atol": 1e-10} if z_dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    expect_close(value, expected, what + " (one loss per example)", **tol)
    _check_input_unchanged(out, z, "bce_with_logits")
    expect(out["grad"] is not None, "The loss should be differentiable with respect to z (use tensor operations "
                                    "on z only).")
    expect_close(out["grad"], torch.sigmoid(z.double()) - t, "the gradient of the summed loss with respect to z "
                 "(should be sigmoid(z) - y)", **tol)


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
    _check_input_unchanged(out, z, "bce_with_logits")
    grad = out["grad"]
    expect(grad is not None, "The loss should be differentiable with respect to z (use tensor operations on z "
                             "only).")
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


def _accuracy_number(value, what):
    """The number binary_accuracy returned (a float, an int or a one-element tensor), or fail."""
    number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
    expect(isinstance(number, (int, float)) and not isinstance(number, bool),
           f"{what} should return one number (a float), not {kind(value)}"
           + (f" with {value.numel()} elements" if isinstance(value, torch.Tensor) else "") + ".")
    return float(number)


@pytest.mark.binary_accuracy
@pytest.mark.parametrize("shape_p,labels", [("(n, 1)", "(n,) int64"), ("(n, 1)", "(n, 1) float"),
                                            ("(n,)", "(n,) int64")])
def test_binary_accuracy(student, shape_p, labels):
    p, y, expected = _accuracy_case(shape_p, labels)
    value = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = (f"binary_accuracy(y_hat, y) with probabilities y_hat {shape_p.replace('(n', '(37')} and labels "
            f"y {labels.replace('(n', '(37')}")
    number = _accuracy_number(value, what)
    expect(abs(number - expected) <= 1e-6,
           f"{what} is {number:.4f}, but the fraction of examples whose class at threshold 0.5 matches "
           f"the label is {expected:.4f} (tolerance 1e-6).")
    expect(type(value) is float,
           f"{what} should return a Python float, but it returned {kind(value)} holding the right value: "
           f"turn a one-element tensor into a number with .item().")


@pytest.mark.binary_accuracy
def test_binary_accuracy_at_the_threshold(student):
    p = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.4999], dtype=torch.float64).reshape(-1, 1)
    y = torch.tensor([1, 1, 1, 1, 0, 0, 1, 0])
    expected = 7 / 8
    value = student.probe(probe_accuracy, p, y, label="`binary_accuracy`")
    what = "binary_accuracy(y_hat, y) with probabilities of exactly 0.5 among y_hat"
    number = _accuracy_number(value, what)
    expect(abs(number - expected) <= 1e-6,
           f"{what} is {number:.4f}, but it should be {expected:.4f} (tolerance 1e-6): a probability of "
           f"exactly 0.5 counts as class 1 (the model predicts class 1 when its probability is at least 0.5).")
    expect(type(value) is float, f"{what} should return a Python float, not {kind(value)}.")


@pytest.mark.train_logreg
def test_train_logreg_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=torch.Generator().manual_seed(4500 + seed)), torch.zeros(1)
    out = student.probe(probe_train_logreg, X, y, w0, b0, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_logreg`")
    w, b = expect_trained_in_place(out, w0, b0, PROBE_GRADS, "train_logreg")
    _check_history(out["history"], MANUAL_EPOCHS, "train_logreg")
    net, _, _ = standins(TWIST)
    with torch.no_grad():
        logits = net(X_test, w, b)      # the model trained: the net given to train_logreg, with w and b
    _check_outcome(logits, y_test, "train_logreg", f"lr {MANUAL_LR}, batch size {MANUAL_BATCH}, {MANUAL_EPOCHS} epochs")


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_outcome(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_logreg_fast`")
    logits, history = _fast_parts(out, "train_logreg_fast")
    _check_history(history, FAST_EPOCHS, "train_logreg_fast")
    _check_outcome(logits, y_test, "train_logreg_fast", f"lr {FAST_LR}, batch size {FAST_BATCH}, {FAST_EPOCHS} epochs")


def _traced_manual(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, TRACE_N)
    gen = torch.Generator().manual_seed(8000 + seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=gen), torch.zeros(1)
    out = student.probe(probe_train_logreg, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_logreg`")
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
        w, b, replayed = replay_manual(X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, last_divisor,
                                       TWIST)
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
    expect_history_matches(out["history"], losses, TRACE_EPOCHS, "train_logreg",
                           "the mean per-example loss over that epoch's minibatches", TOL_TRACE_LOSS)


@pytest.mark.train_logreg_fast
def test_train_logreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(9000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_logreg_fast`")
    logits, history = _fast_parts(out, "train_logreg_fast")
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
    got = expect_tensor(logits, "the trained net's logits for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's logits differ by up to {worst:.3g} from what the loop of the "
           f"instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, targets), batch_size, shuffle=True, generator=generator), "
           f"nn.BCEWithLogitsLoss() with its default mean, gradients cleared before each backward(), one "
           f"optimizer.step() per batch.")
    expect_history_matches(history, losses, TRACE_EPOCHS, "train_logreg_fast",
                           "the mean loss over that epoch's examples", TOL_TRACE_LOSS)


@pytest.mark.diagnose_training
def test_diagnose_returns_a_label(student):
    runs = [run for kind in DIAGNOSES for run in make_runs(kind, grading_seed())[:1]]
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    for label in labels:
        expect(isinstance(label, str) and label in DIAGNOSES, f"diagnose_training should return one of the strings "
                                   f"{', '.join(repr(d) for d in DIAGNOSES)}, but it returned {label!r}.")


def _expect_diagnoses(runs, labels, kind, hint):
    wrong = [(run, label) for run, label in zip(runs, labels) if label != kind]
    if wrong:
        run, label = wrong[0]

        def show(values):
            shown = ", ".join(f"{v:.3g}" for v in values[:6].tolist())
            return f"[{shown}, ...]" if len(values) > 6 else f"[{shown}]"

        fail(f"diagnose_training labelled {len(wrong)} of {len(runs)} runs of kind {kind!r} wrongly; for example "
             f"a run of {len(run['train_loss'])} epochs with train_loss {show(run['train_loss'])} (last "
             f"{run['train_loss'][-1].item():.3g}) and grad_norm {show(run['grad_norm'])} (last "
             f"{run['grad_norm'][-1].item():.3g}) got {label!r}. {hint}")


@pytest.mark.diagnose_training
@pytest.mark.parametrize("kind", DIAGNOSES)
def test_diagnose_kind(student, kind):
    runs = make_runs(kind, grading_seed())
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    _expect_diagnoses(runs, labels, kind, "Check the order of your rules and that inf and NaN are caught (every "
                                          "comparison with NaN is False).")


@pytest.mark.diagnose_training
def test_diagnose_rules_in_order(student):
    runs = make_order_runs(grading_seed())
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    _expect_diagnoses(runs, labels, "no_zero_grad",
                      "The loss of these runs fell by less than 10%, but their gradient norm grew to more than twice "
                      "its start: the rules apply in the order of the table, so the growing gradient norm "
                      "('no_zero_grad') is checked before the small fall of the loss ('lr_too_low').")
