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
"""
import math
import os

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task

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
