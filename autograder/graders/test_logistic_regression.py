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
"""
import math
import os

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task

ASSIGNMENT = "04-logistic-regression"
TASKS = [
    Task("sigmoid", 1, "A sigmoid that is finite, with finite gradients, for any input"),
    Task("bce_with_logits", 2, "Binary cross-entropy of logits in a stable form"),
    Task("binary_accuracy", 1, "Accuracy at probability threshold 0.5"),
    Task("train_logreg", 2, "The manual training loop: held-out accuracy and loss"),
    Task("train_logreg_fast", 2, "nn.Linear + nn.BCEWithLogitsLoss + optim.SGD"),
]

CENTERS = torch.tensor([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]])
N_PER_CLASS = 500

MANUAL_LR, MANUAL_BATCH, MANUAL_EPOCHS = 0.1, 10, 3
FAST_LR, FAST_BATCH, FAST_EPOCHS = 0.1, 10, 3
MIN_ACCURACY, MAX_TEST_LOSS, MAX_TRAIN_LOSS = 0.86, 0.3, 0.3


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
    """Held-out accuracy (logit > 0, i.e. probability > 0.5) and mean binary cross-entropy, in float64."""
    z = logits.double().reshape(-1)
    t = y_test.double()
    accuracy = ((z > 0).double() == t).double().mean().item()
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
    value = expect_tensor(out["value"], what, shape=(37, 1))
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
    value = expect_tensor(out["value"], "bce_with_logits(z, y) for float32 logits", shape=(2 * len(EXTREMES), 1))
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
