"""Graders for 03-linear-regression: parameters, model, squared loss, an in-place SGD step, training.

Training thresholds (benchmarks/calibrate_linear_regression.py, 20 seeded runs of the reference on the
graders' data: d = 3, n = 1000, noise 0.01, see ``make_data``):
- manual loop (lr 0.03, batch 10, 3 epochs, the plain model/loss/updater injected): max |w - w*|
  2.2e-4 .. 1.0e-3 (median 5.0e-4), |b - b*| 1.9e-5 .. 1.2e-3, last epoch loss 5.0e-5 .. 6.2e-5.
  The graders inject the stand-ins of ``standins`` with TWIST instead, and judge the model they train (its
  weights w * scale and bias b + shift); the reference's loop with them, over the same 20 seeds: max error
  8.0e-5 .. 1.1e-3 (median 7.3e-4), bias 2.9e-5 .. 1.1e-3, last epoch loss 6.6e-5 .. 7.4e-5.
  Thresholds: 0.02, 0.02 and 1e-3 (more than 13x above the worst reference run). Dividing by the
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
relative. The manual loop gets recording stand-ins for net, loss and updater that are deliberately no
task's answer (``standins``: the model scales its features and shifts its predictions, each example's loss
has a weight, each parameter's step a factor, all chosen here in TWIST), and the replay runs the very same
functions: a loop that calls its own functions by name is caught by the counts and by the replay. The fast
loop's starting parameters are read when it creates its torch.optim.SGD. Margins over 20 grading seeds
(benchmarks/calibrate_linear_regression.py, plain pieces): the reference is 0 away from the replay (manual and
fast); minibatches in another order move w and b by 1.6e-3 or more (16x the tolerance), an epoch loss averaged
over batch means is off by 1.2e-2 relative or more, momentum 0.9 moves the fast net's predictions by 3.6 or
more. With TWIST, over the same seeds: the reference is 0 away, another order 4.7e-3 or more (47x).

Seeds: the probes seed torch's global random state to another value than the generator they pass, so that
a loop that ignores the generator (and draws its order from the global state) does not replay the same order.
The history must hold 'epoch' = [1, ..., num_epochs] and Python floats in 'train_loss' (tensors are refused in
the judge, never converted in the student's process). squared_loss is also judged at n = 1 (no squeeze).

The judge decides everything, from data: a probe only calls the student's code and brings back what it
returned and what a caller sees afterwards (values, gradients, the argument it passed), never a verdict
computed next to the student's code, which that code could rewrite. Requirements about state only the
student's process holds are judged by their consequences: leaf tensors that require grad by the gradients a
backward() leaves in .grad (a non-leaf or a tensor without requires_grad keeps None); an in-place SGD step by
the values and .grad of the very tensors the caller holds after two steps (a rebound name leaves them
unchanged, gradients not zeroed stay nonzero, a parameter that lost requires_grad fails the next backward());
new tensors on each call by the gradients of the second pair after a backward() through the first; an
argument left alone by its value after the call. No correct stand-in (no answer of the lesson) is sent into
the student's process.
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
        "any n, one example included (y_hat (1, 1), y (1,) or (1, 1): no squeeze to a scalar)": "test_squared_loss",
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
        "the generator given drives the order (the global RNG is seeded to another value than the generator)":
            "test_train_linreg_follows_the_method",
        "train_loss is the mean per-example loss over each epoch (a smaller last batch weighs less)":
            "test_train_linreg_follows_the_method",
        "history {'epoch': [1..num_epochs], 'train_loss': [float per epoch]}":
            ["test_train_linreg_recovers_parameters", "test_train_linreg_follows_the_method"],
        "history['epoch'] is [1, ..., num_epochs], counted from 1": "test_train_linreg_recovers_parameters",
        "train_loss holds Python floats (.item()), not tensors":
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
        "history['epoch'] is [1, ..., num_epochs]; train_loss holds Python floats, not tensors":
            ["test_train_linreg_fast_predicts", "test_train_linreg_fast_follows_the_method"],
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
# Probes only call the student's code and bring back data (values, gradients, what came back); every verdict
# is made by the graders below, in the judging process.
def probe_init(ns, num_inputs, X, c):
    """Two calls of init_linreg_params(num_inputs): what the first returned, and the gradients that the
    backward() of sum(c * (X w + b)) through the first pair leaves on the tensors of both pairs."""
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(0)
    first = init(num_inputs)
    second = init(num_inputs)
    try:
        w, b = first
        w2, b2 = second
    except (TypeError, ValueError):
        return {"first": first}
    try:
        ((X.to(w.dtype) @ w + b) * c).sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # a pair that autograd cannot reach: its gradients stay None
    grads = [getattr(t, "grad", None) for t in (w, b, w2, b2)]
    return {"first": first, "grads": [None if g is None else g.clone() for g in grads]}


def probe_linreg(ns, X, w, b):
    """linreg(X, w, b) and the gradients of its sum with respect to w and b."""
    import torch
    linreg = ns.require("linreg")
    w = w.clone().requires_grad_()
    b = b.clone().requires_grad_()
    y_hat = linreg(X, w, b)
    try:
        y_hat.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # not connected to w and b: their gradients stay None
    return {"y_hat": y_hat, "w_grad": w.grad, "b_grad": b.grad}


def probe_squared_loss(ns, y_hat, y):
    """squared_loss(y_hat, y), the y it was given as it is afterwards, and the gradient of the summed loss."""
    import torch
    loss = ns.require("squared_loss")
    y_hat = y_hat.clone().requires_grad_()
    l = loss(y_hat, y)
    after = y.clone()
    try:
        l.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass
    return {"loss": l, "y_after": after, "grad": y_hat.grad}


def probe_sgd(ns, values, grads, lr, batch_size):
    """Steps of sgd on parameters the caller holds; before each, backward() of sum(g * p) puts the judge's
    gradients g into p.grad. After each step: the values and .grad of the caller's tensors."""
    import torch
    sgd = ns.require("sgd")
    held = [v.clone().requires_grad_() for v in values]
    steps = []
    for step_grads in grads:
        try:
            sum((g * p).sum() for p, g in zip(held, step_grads)).backward()
        except RuntimeError as exc:     # no tensor that autograd reaches any more
            return {"steps": steps, "backward_error": str(exc)}
        sgd(list(held), lr, batch_size)
        steps.append({"values": [p.detach().clone() for p in held],
                      "grads": [None if p.grad is None else p.grad.clone() for p in held]})
    return {"steps": steps}


def standins(twist, calls=None):
    """(net, loss, updater) for train_linreg, shaped like the lesson's but each with a twist chosen by the judge,
    so that none is an answer to a task: the model reads its features scaled and shifts its predictions, each
    example's loss is weighted by 1 + bend * tanh(target)**2, and each parameter's step has a factor of its
    own (w: factors[0], b: factors[1]). The judge's replay calls these very functions; the probes get their
    source. ``calls`` (optional) counts the calls of each."""
    import torch
    scale, shift, bend, factors = twist["scale"], twist["shift"], twist["bend"], twist["factors"]

    def net(X, w, b):
        if calls is not None:
            calls["net"] += 1
        return torch.matmul(X, w * scale.to(w.dtype)) + b + shift

    def loss(y_hat, y):
        if calls is not None:
            calls["loss"] += 1
        target = y.reshape(y_hat.shape).to(y_hat.dtype)
        weight = 1 + bend * torch.tanh(target) ** 2
        return weight * (y_hat - target) ** 2 / 2

    def updater(params, lr, batch_size):
        if calls is not None:
            calls["updater"].append([float(lr), float(batch_size)])
        with torch.no_grad():
            for p in params:
                factor = factors[0] if p.dim() == 2 else factors[1]
                p.sub_(p.grad * (factor * lr / batch_size))
                p.grad.zero_()

    return net, loss, updater


def probe_train_linreg(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist, probe_grads):
    """train_linreg from (w0, b0) with the stand-ins of ``pieces``: the w and b the caller holds afterwards, the
    history, the calls of the stand-ins, and the gradients that the backward() of sum(g_w * w) + sum(g_b * b)
    leaves on w and b after training."""
    import torch
    train = ns.require("train_linreg")
    scope = {}
    exec(pieces, scope)
    calls = {"net": 0, "loss": 0, "updater": []}
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
    """train_linreg_fast: the trained net's outputs for X_test and the history, or the type name of what came
    back when it is not two things."""
    import torch
    train = ns.require("train_linreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    try:
        net, history = result
    except (TypeError, ValueError):
        return {"returned": type(result).__name__}   # not two things: only its name can come back
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        y_hat = net(X_test)
    return {"y_hat": y_hat, "history": history}


def probe_init_sigma(ns, num_inputs, sigma):
    """What init_linreg_params(num_inputs) (sigma None) or init_linreg_params(num_inputs, sigma=sigma) returns."""
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(1)
    return init(num_inputs) if sigma is None else init(num_inputs, sigma=sigma)


def make_trace_data(seed, n):
    """Small training data for the method checks: X (n, 3) float32, y (n, 1) float32."""
    gen = torch.Generator().manual_seed(3000 + seed)
    X = torch.randn(n, 3, generator=gen)
    y = (X.double() @ TRUE_W + TRUE_B + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    return X, y.reshape(-1, 1)


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
    try:
        net, history = result
    except (TypeError, ValueError):
        return {"returned": type(result).__name__, "created": created}
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        y_hat = net(X_eval)
    return {"y_hat": y_hat, "history": history, "created": created}


# ------------------------------------------------------------------------------------------ helpers
# The stand-ins' twists (see ``standins``) for the manual loop, and PLAIN: no twist, the pieces of the lesson.
TWIST = {"scale": torch.tensor([[1.25], [0.9], [1.1]]), "shift": 0.4, "bend": 0.5, "factors": [1.2, 0.8]}
PLAIN = {"scale": torch.ones(3, 1), "shift": 0.0, "bend": 0.0, "factors": [1.0, 1.0]}
PIECES = inspect.getsource(standins)
# What the judge asks a loss's backward() to leave in w.grad and b.grad after training (w (3, 1), b (1,)).
PROBE_GRADS = [torch.tensor([[0.5], [-1.25], [2.0]]), torch.tensor([0.75])]


def _check_history(history, num_epochs, what, threshold):
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect_epochs(history, num_epochs, what)
    expect(all(math.isfinite(v) for v in losses),
           f"The training loss of {what} became inf or NaN: training diverged ({losses}).")
    expect(losses[-1] <= threshold,
           f"After {num_epochs} epochs the training loss of {what} is {losses[-1]:.4g}; a correct loop "
           f"reaches below {threshold:g} on this data (tolerance included). Does every step use the "
           f"gradient of the batch's mean loss exactly once?")


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


def _fast_parts(out, what):
    """The trained net's outputs and the history from a fast probe, or fail when what came back is not a pair."""
    expect("returned" not in out, f"{what} should return two things, a tuple (net, history), but it returned a "
                                  f"{out.get('returned')}.")
    return out["y_hat"], out["history"]


@pytest.mark.init_linreg_params
@pytest.mark.parametrize("d", [3, 7])
def test_init_params(student, d):
    gen = torch.Generator().manual_seed(20 + d)
    X = torch.randn(5, d, generator=gen)
    c = torch.rand(5, 1, generator=gen) + 0.5
    out = student.probe(probe_init, d, X, c, label="`init_linreg_params`")
    first = out["first"]
    expect(isinstance(first, (tuple, list)) and len(first) == 2,
           f"init_linreg_params should return a tuple (w, b), not {kind(first)}.")
    expect("grads" in out, "Every call of init_linreg_params should return a tuple (w, b).")
    for name, value, shape in (("w", first[0], (d, 1)), ("b", first[1], (1,))):
        expect_tensor(value, f"{name} from init_linreg_params({d})", shape=shape, dtype=torch.float32, finite=True)
    w_grad, b_grad, second_w_grad, second_b_grad = out["grads"]
    for name, grad in (("w", w_grad), ("b", b_grad)):
        expect(grad is not None,
               f"After a loss's backward(), {name}.grad is still None: {name} should be a leaf tensor with "
               f"requires_grad=True, or autograd does not fill its gradient. Ask for gradients when you create it, "
               f"and create the values first: a tensor computed from one that requires grad (e.g. "
               f"torch.randn(..., requires_grad=True) * sigma) is not a leaf.")
    expect_close(w_grad, X.double().T @ c.double(), f"the gradient that a loss's backward() leaves in w.grad "
                 f"(w from init_linreg_params({d}))", rtol=1e-5, atol=1e-5)
    expect_close(b_grad, c.double().sum().reshape(1), f"the gradient that a loss's backward() leaves in b.grad "
                 f"(b from init_linreg_params({d}))", rtol=1e-5, atol=1e-5)
    biggest = first[0].abs().max().item()
    expect(biggest <= 1.0, f"w should start small (the instructions use N(0, 0.01^2)); its largest entry "
                           f"is {biggest:.3g} (allowed: at most 1 in absolute value).")
    expect(all(g is None or not g.any() for g in (second_w_grad, second_b_grad)),
           "Each call of init_linreg_params should create new tensors, not return the same ones again.")


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
    expect(out["w_grad"] is not None and out["b_grad"] is not None,
           "linreg's output is not connected to both w and b: use tensor operations on them (no .detach(), "
           ".numpy() or .item()), so that autograd can compute their gradients.")
    expect_close(out["w_grad"], X.double().sum(dim=0, keepdim=True).T, "the gradient of sum(linreg(X, w, b)) "
                 "with respect to w", **tol)
    expect_close(out["b_grad"], torch.tensor([37.0], dtype=torch.float64),
                 "the gradient of sum(linreg(X, w, b)) with respect to b", **tol)


@pytest.mark.squared_loss
@pytest.mark.parametrize("n", [37, 1])
@pytest.mark.parametrize("y_shape", ["(n, 1)", "(n,)"])
def test_squared_loss(student, y_shape, n):
    gen = torch.Generator().manual_seed(4)
    y_hat = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    sent = y if y_shape == "(n, 1)" else y.reshape(-1)
    out = student.probe(probe_squared_loss, y_hat, sent, label="`squared_loss`")
    what = f"squared_loss(y_hat, y) with y_hat ({n}, 1) and y {y_shape.replace('(n', f'({n}')}"
    expect_tensor(out["loss"], what, shape=(n, 1))
    expect_close(out["loss"], (y_hat - y) ** 2 / 2, what + " (one loss (y_hat - y)**2 / 2 per example)",
                 rtol=1e-10, atol=1e-12)
    after = out["y_after"]
    same_shape = tuple(after.shape) == tuple(sent.shape)
    changed = f"has shape {tuple(after.shape)} instead of {tuple(sent.shape)}" if not same_shape else "holds other values"
    expect(same_shape and torch.equal(after, sent),
           f"squared_loss should not change its argument y, but after the call y {changed}: make a new tensor "
           f"(y.reshape(...) into a new name, no in-place operation on y or on a view of it).")
    expect(out["grad"] is not None, "The loss should be differentiable with respect to y_hat (use tensor "
                                    "operations only).")
    expect_close(out["grad"], y_hat - y, "the gradient of the summed squared loss with respect to y_hat",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.sgd_step
def test_sgd_updates_in_place(student):
    gen = torch.Generator().manual_seed(5)
    shapes = [(3, 1), (1,), (4, 5)]
    values = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(2)]
    lr, batch_size = 0.1, 5
    out = student.probe(probe_sgd, values, grads, lr, batch_size, label="`sgd`")
    steps = out["steps"]
    expected = [v.double() for v in values]
    for k, step in enumerate(steps, start=1):
        when = "after one step" if k == 1 else "after a second step"
        expected = [e - lr * g.double() / batch_size for e, g in zip(expected, grads[k - 1])]
        for i, value in enumerate(step["values"]):
            expect_close(value, expected[i], f"parameter {i} of shape {tuple(expected[i].shape)} {when} "
                         f"(should be p - lr * p.grad / batch_size, changed in place: rebinding a name, "
                         f"p = p - ..., changes nothing for the caller)", rtol=1e-5, atol=1e-6)
        expect(all(g is None or not g.any() for g in step["grads"]),
               f"The gradients should be zero (or None) {when}: backward() adds to .grad, so gradients that are "
               f"not cleared pile up from step to step.")
    expect(len(steps) == len(grads),
           f"After {len(steps)} step(s) of sgd, a loss's backward() through the parameters fails "
           f"({out.get('backward_error', '')[:120]}): the parameters should stay leaf tensors that require grad. "
           f"Update them in place under torch.no_grad() (or through .data), and leave requires_grad as it is.")


@pytest.mark.train_linreg
def test_train_linreg_recovers_parameters(student):
    seed = grading_seed()
    X, y, _, _ = make_data(seed)
    w0, b0 = 0.01 * torch.randn(3, 1, generator=torch.Generator().manual_seed(4500 + seed)), torch.zeros(1)
    out = student.probe(probe_train_linreg, X, y, w0, b0, MANUAL_LR, MANUAL_EPOCHS, MANUAL_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_linreg`")
    w, b = (t.double() for t in expect_trained_in_place(out, w0, b0, PROBE_GRADS, "train_linreg"))
    _check_history(out["history"], MANUAL_EPOCHS, "train_linreg", TOL_LOSS)
    if not torch.isfinite(w).all():
        fail("w became inf or NaN during training.")
    # the net given to train_linreg reads its features scaled and shifts its predictions (``standins``)
    w_err = (w.reshape(-1) * TWIST["scale"].double().reshape(-1) - TRUE_W).abs().max().item()
    b_err = abs(b.reshape(-1)[0].item() + TWIST["shift"] - TRUE_B)
    expect(w_err <= TOL_W and b_err <= TOL_B,
           f"After {MANUAL_EPOCHS} epochs (lr {MANUAL_LR}, batch size {MANUAL_BATCH}) on data made with known "
           f"parameters, the model trained (the net given to train_linreg, with your w and b) is off from them by "
           f"up to {max(w_err, b_err):.3g}; a correct loop gets within {TOL_W:g} (tolerance).")


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_predicts(student):
    seed = grading_seed()
    X, y, X_test, y_test = make_data(seed)
    out = student.probe(probe_train_fast, X, y, X_test, FAST_LR, FAST_EPOCHS, FAST_BATCH, seed,
                        label="`train_linreg_fast`")
    y_hat, history = _fast_parts(out, "train_linreg_fast")
    y_hat = expect_tensor(y_hat, f"net(X) for X of shape ({N_TEST}, 3)", shape=(N_TEST, 1))
    _check_history(history, FAST_EPOCHS, "train_linreg_fast", TOL_FAST_LOSS)
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
    expect(isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out),
           f"{call} returned {kind(out)}, not a tuple of two tensors (w, b).")
    w = expect_tensor(out[0], f"w from {call}", shape=(d, 1), dtype=torch.float32, finite=True).double()
    b = expect_tensor(out[1], f"b from {call}", shape=(1,), dtype=torch.float32)
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
    out = student.probe(probe_train_linreg, X, y, w0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed, PIECES,
                        TWIST, PROBE_GRADS, label="`train_linreg`")
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
           f"backward() on the sum of the per-example losses, and step once per minibatch.")
    expect_history_matches(out["history"], losses, TRACE_EPOCHS, "train_linreg",
                           "the mean per-example loss over that epoch's minibatches", TOL_TRACE_LOSS)


@pytest.mark.train_linreg_fast
def test_train_linreg_fast_follows_the_method(student):
    seed = grading_seed()
    X, y = make_trace_data(seed, FAST_TRACE_N)
    X_eval = torch.randn(50, 3, generator=torch.Generator().manual_seed(5000 + seed))
    out = student.probe(probe_train_fast_traced, X, y, X_eval, FAST_TRACE_LR, TRACE_EPOCHS, FAST_TRACE_BATCH, seed,
                        label="`train_linreg_fast`")
    y_hat, history = _fast_parts(out, "train_linreg_fast")
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
    got = expect_tensor(y_hat, "the trained net's predictions for 50 inputs", shape=(50, 1)).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {FAST_TRACE_N} examples (lr {FAST_TRACE_LR}, batch size "
           f"{FAST_TRACE_BATCH}), the trained net's predictions differ by up to {worst:.3g} from what the loop of "
           f"the instructions gives from the same starting parameters (tolerance {TOL_TRACE_PARAMS:g}). Check: "
           f"DataLoader(TensorDataset(X, y), batch_size, shuffle=True, generator=generator), nn.MSELoss() "
           f"with its default mean, optimizer.zero_grad() before each backward(), one optimizer.step() per batch.")
    expect_history_matches(history, losses, TRACE_EPOCHS, "train_linreg_fast",
                           "the mean of nn.MSELoss over that epoch's examples", TOL_TRACE_LOSS)
