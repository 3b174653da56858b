"""The judge's side of softmax_regression: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import math
import os

import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, expect_tensor, fail

from .probes import probe_backward, probe_jacobian


F64 = {"atol": 1e-10, "rtol": 1e-7}

F32 = {"atol": 1e-6, "rtol": 1e-5}

F32_EXTREME = {"atol": 1e-4, "rtol": 1e-4}  # float32 at +-1000: valid formulas differ by a few 1e-5

# Training outcome: data, budget and thresholds (see the module docstring).
NUM_CLASSES, NUM_INPUTS, N_PER_CLASS = 4, 3, 100

LR, NUM_EPOCHS, BATCH_SIZE = 0.5, 5, 16

TRAIN_SEED = 0

MIN_ACCURACY, MAX_LOSS = 0.92, 0.17

# Method checks: replayed in the judging process (see the module docstring).
TRACE_N, TRACE_LR, TRACE_BATCH, TRACE_EPOCHS = 37, 0.5, 5, 2

FAST_TRACE_LR, FAST_TRACE_BATCH, FAST_TRACE_EPOCHS = 0.5, 64, 3

TOL_TRACE_PARAMS, TOL_TRACE_LOSS = 1e-4, 1e-5

# While train_softmax runs, the grader's own softmax_regression adds LOGIT_OFFSET to the logits and its own
# cross_entropy is LOSS_SCALE times the mean cross-entropy; the judging process replays exactly that. Starting
# from b0 - LOGIT_OFFSET with the learning rate divided by LOSS_SCALE (a power of two: exact), the effective
# model X @ W + (b + LOGIT_OFFSET) follows the plain loop of the instructions step by step.
LOGIT_OFFSET = torch.tensor([0.5, -0.25, 0.75, -1.0])

LOSS_SCALE = 2.0

# The gradient check: central differences of the student's own values against its autograd gradients.
GRADCHECK = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base, seed=None):
    """The generator seed of one input: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * (grading_seed() if seed is None else seed)


def _logits(n, c, dtype, seed, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, c, generator=gen, dtype=torch.float64)).to(dtype)


def extreme_logits(dtype):
    """Rows that break the naive formulas: +-1000 and equal entries, C = 3."""
    rows = [[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0],
            [1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 999.0, -1000.0]]
    return torch.tensor(rows, dtype=dtype)

EXTREME_LABELS = torch.tensor([2, 0, 1, 1, 2, 0, 1])


def single_class_logits(dtype):
    return torch.tensor([[0.0], [1000.0], [-1000.0], [3.5]], dtype=dtype)


def _blobs(n_per_class, seed):
    """Gaussian blobs around fixed centres (the same for every call), shuffled; (X, y)."""
    centers = torch.randn(NUM_CLASSES, NUM_INPUTS, generator=torch.Generator().manual_seed(1234))
    centers = 4.0 * centers / centers.norm(dim=1, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    X = centers.repeat_interleave(n_per_class, dim=0) + torch.randn(NUM_CLASSES * n_per_class, NUM_INPUTS,
                                                                    generator=gen)
    y = torch.arange(NUM_CLASSES).repeat_interleave(n_per_class)
    order = torch.randperm(len(y), generator=gen)
    return X[order].contiguous(), y[order].contiguous()


def training_data(seed=0):
    """(X_train, y_train, X_test, y_test) of the training-outcome graders under grading seed ``seed``.

    The training points follow the seed; the class centres and the held-out set stay fixed: the held-out
    draw, not the training, is what moves the reference's held-out loss (0.078-0.174 over 20 held-out
    draws, against 0.077-0.097 over 20 training draws with the held-out set fixed), and the thresholds
    are calibrated on this one held-out set, which every student is scored on.
    """
    X_train, y_train = _blobs(N_PER_CLASS, seed=_seed(11, seed))
    X_test, y_test = _blobs(N_PER_CLASS, seed=12)
    return X_train, y_train, X_test, y_test


def expect_result(out, what):
    value = out["out"] if isinstance(out, dict) and "out" in out else out
    if isinstance(value, str):
        fail(f"{what} should return a tensor, but it returned {value}.")
    return value


def _unchanged(after, before):
    """Whether ``after`` (an argument as the student's process returned it after the call) equals ``before``."""
    return (isinstance(after, torch.Tensor) and after.dtype == before.dtype and after.shape == before.shape
            and torch.equal(after, before))


def _oracle_softmax_grad(O, G):
    O = O.double().clone().requires_grad_()
    (torch.softmax(O, dim=1) * G).sum().backward()
    return O.grad


def _oracle_ce_grad(O, y):
    O = O.double().clone().requires_grad_()
    F.cross_entropy(O, y).backward()
    return O.grad


def check_backward(student, name, O, what, G=None, y=None):
    out = student.probe(probe_backward, name, O, G, y, label=f"`{name}`")
    value = expect_result(out, f"`{name}`")
    expect_tensor(value, f"{name} for {what}", shape=tuple(O.shape) if y is None else ())
    expect(out["grad"] is not None,
           f"The result of {name} for {what} is not connected to O by autograd: after backward, O.grad is None. "
           f"Compute it with torch operations on O (no .detach(), .item() or .numpy(), no new tensor built "
           f"from its values).")
    expected = _oracle_softmax_grad(O, G) if y is None else _oracle_ce_grad(O, y)
    expect_tensor(out["grad"], f"the gradient of {name} with respect to O for {what}", shape=tuple(O.shape))
    expect(bool(torch.isfinite(out["grad"]).all()),
           f"The gradient of {name} with respect to O contains inf or NaN for {what}.")
    expect_close(out["grad"], expected, f"The gradient of {name} with respect to O for {what} "
                                        f"(compared with PyTorch's)", **F64)


def check_gradcheck(student, name, O, y=None):
    """The student's autograd Jacobian at O against central differences of the student's own values, computed
    here (the criterion of torch.autograd.gradcheck: |analytical - numerical| <= atol + rtol * |numerical|)."""
    eps, atol, rtol = GRADCHECK["eps"], GRADCHECK["atol"], GRADCHECK["rtol"]
    n = O.numel()
    points = []
    for j in range(n):
        for sign in (1.0, -1.0):
            point = O.clone().reshape(-1)
            point[j] += sign * eps
            points.append(point.reshape(O.shape))
    out = student.probe(probe_jacobian, name, O, torch.stack(points), y, label=f"`{name}`")
    where = f"{name} in float64 (finite differences with eps={eps:g}, atol={atol:g}, rtol={rtol:g})"
    values = []
    for value in out["values"]:
        if isinstance(value, str):
            fail(f"{name} should return a tensor, but it returned {value}.")
        values.append(value.double().reshape(-1))
    m = values[0].numel()
    expect(all(v.numel() == m for v in values) and len(out["rows"]) == m,
           f"{name} returned results of different sizes for logits of the same shape {tuple(O.shape)}.")
    numerical = torch.stack([(values[2 * j] - values[2 * j + 1]) / (2 * eps) for j in range(n)], dim=1)
    rows = out["rows"]
    expect(all(row is not None for row in rows),
           f"The gradient of {where} does not reach O for some output entries: compute every entry with torch "
           f"operations on O.")
    analytical = torch.stack([row.double().reshape(-1) for row in rows])
    expect(tuple(analytical.shape) == tuple(numerical.shape),
           f"The gradient of {name} with respect to O has the wrong shape.")
    bad = ~((analytical - numerical).abs() <= atol + rtol * numerical.abs())
    if bool(bad.any()):
        i, j = (int(k) for k in bad.nonzero()[0])
        fail(f"The gradient of {where} differs from finite differences of its own values: for output entry {i} "
             f"and input entry {j}, autograd gives {analytical[i, j].item():.6g}, finite differences "
             f"{numerical[i, j].item():.6g}.")

CREATE_A_LEAF = ("(a tensor computed from another one, e.g. torch.randn(..., requires_grad=True) * 0.01, is not a "
                 "leaf; a tensor made without requires_grad gets no gradient). Create it, then call "
                 ".requires_grad_(), or pass requires_grad=True when creating it.")

KEEP_A_LEAF = ("(its requires_grad was turned off, e.g. by .requires_grad_(False) or .detach_()). Update W and b in "
               "place under torch.no_grad(), as sgd does, and leave them requiring grad.")


def expect_gradient_lands(grad, G, what, advice):
    """A backward pass of sum(G * p) must leave exactly G in p.grad (only a leaf that requires grad gets one)."""
    if grad is None:
        fail(f"{what}: after a backward pass through it, its .grad is None, so gradient descent cannot update it "
             f"{advice}")
    expect(tuple(grad.shape) == tuple(G.shape)
           and bool(torch.allclose(grad.double(), G.double(), rtol=0, atol=1e-6)),
           f"{what}: a backward pass through it does not leave its gradient in its .grad (tolerance 1e-6).")


def score(O, y):
    accuracy = (O.argmax(dim=1) == y).double().mean().item()
    loss = F.cross_entropy(O.double(), y).item() if torch.isfinite(O).all() else math.inf
    return accuracy, loss


def expect_outcome(accuracy, loss, what, lr=LR):
    hint = ""
    if accuracy >= MIN_ACCURACY and loss > MAX_LOSS:
        hint = (" A good accuracy with a high loss means the logits are badly scaled: check that the model "
                "outputs raw logits, that the loss is the mean cross-entropy of those logits, and the size "
                "of each step.")
    expect(accuracy >= MIN_ACCURACY and loss <= MAX_LOSS,
           f"{what} reached held-out accuracy {accuracy:.3f} (needed >= {MIN_ACCURACY}) and held-out mean "
           f"cross-entropy {loss:.3f} (needed <= {MAX_LOSS}) on well-separated blobs with 4 classes "
           f"(lr {lr:g}, {NUM_EPOCHS} epochs, batches of {BATCH_SIZE}).{hint}")
