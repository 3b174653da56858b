"""Graders for 05-softmax-regression: stable softmax and cross-entropy, the model, manual and fast training.

Every numerical comparison runs in float64 in the judging process, against PyTorch as the oracle
(``torch.softmax``, ``F.cross_entropy`` and their autograd gradients). Tolerances:

* float64 inputs: values and gradients within atol=1e-10, rtol=1e-7 (correct code differs from the
  oracle by about 1e-15; any other valid formula, e.g. ``exp(O - logsumexp(O))`` or
  ``log_softmax`` + ``nll_loss``, passes);
* float32 inputs: atol=1e-6, rtol=1e-5 (a few float32 ulps), and atol=1e-4, rtol=1e-4 at +-1000,
  where float32 rounding of the shift makes valid formulas differ by a few 1e-5 (the naive formulas
  give inf or NaN there, which is rejected whatever the tolerance);
* a gradient check in float64, done here with the criterion of ``torch.autograd.gradcheck`` (eps=1e-6,
  atol=1e-5, rtol=1e-3): the student's process returns the function's values at O +- eps along every
  input entry and the autograd gradient of every output entry at O; the central differences are taken
  here. Always beside a value check against PyTorch's gradient.

The student's process only returns data, never a verdict: whether an argument was modified is judged
from the argument as it is after the call; whether a parameter is a leaf that requires grad, from what a
backward pass of sum(G * p) (G chosen here) leaves in p.grad (exactly G, or None for a non-leaf or a
tensor without requires_grad).

Stability rows: [1000, 0, -1000] (both orders), all-equal rows (0, 5, +-1000) and C = 1 columns.

Device-agnostic code: without a GPU, ``train_softmax_fast(..., device=meta)`` runs with a stand-in
for ``fit`` that records the device of the model's parameters and of one batch; both must be meta.
(Code that trains without ``fit`` cannot be checked this way and is not penalised.)

Training outcome. The graders make 4 Gaussian blobs in 3 dimensions (centres of norm 4, spread 1;
100 points per class for training, 100 per class held out; seeded), train the student's manual
pipeline (W, b given: N(0, 0.01^2) and zeros) and fast pipeline for 5 epochs at lr 0.5 with batches
of 16, and score held-out accuracy AND mean cross-entropy of the logits in the judging process
(held-out labels never reach the student's process). While the manual loop runs, the grader's own
``cross_entropy`` and ``softmax_regression`` replace the notebook's (graded by their own tasks), so a
mistake there costs only its own task. They are deliberately not the tasks' answers: the logits are
shifted by a constant per class (LOGIT_OFFSET) and the loss is twice the mean cross-entropy
(LOSS_SCALE). The loop is started from b0 - LOGIT_OFFSET with the learning rate halved, so the effective
model X @ W + (b + LOGIT_OFFSET) trains exactly as the plain loop would (the scale is a power of two);
the judging process replays and scores that effective model.

Seeds. Every seeded input of this file follows COURSE_GRADING_SEED (default 0, the seeds below; each
further grading seed shifts them by 1000), read in the judging process and passed to the probes: the
training points, the initial W of the manual loop, the training seed (shuffling, ``nn.Linear``'s
initialisation) and the inputs of the other tasks' checks. The class centres and the held-out set stay
fixed (see ``training_data``). The flakiness check (``benchmarks/flakiness.py``) grades the reference
under other seeds.

Calibration (``benchmarks/calibrate_softmax_regression.py``, grading seeds 0-29 of the reference,
torch 2.14.1, CPU):

* manual: accuracy 0.9575-0.9800 (median 0.9725), loss 0.0769-0.1023 (median 0.0848);
* fast:   accuracy 0.9625-0.9800 (median 0.9725), loss 0.0775-0.0959 (median 0.0830).

Thresholds: accuracy >= 0.92 and loss <= 0.17, below / above every reference run with margins of
0.0375 in accuracy and 0.068 in loss (0.17 is 66% above the worst reference loss). Wrong variants land
clearly on the other side (all 30 seeds rejected): softmax before ``nn.CrossEntropyLoss`` keeps the
accuracy (0.97) but its loss is 0.79-0.81 (its floor is log(1 + 3/e) = 0.743 for 4 classes);
``nn.NLLLoss`` on raw logits keeps the accuracy too, loss 0.52-0.71; the SGD step divided by the batch
size a second time, loss 0.2160-0.2263; gradients never zeroed, loss 0.79-5.4. Labels reshaped to
(n, 1) or made float raise an error in the loss; parameters rebound instead of updated in place raise
an error or stay at their initial values (caught directly). After training, W and b must still take
a gradient (a backward pass of sum(G * p) leaves exactly G in p.grad), and X and y, returned as they are
after the call, must equal what was passed.

Method checks (no threshold). The manual loop is replayed in the judging process from the same W, b on
the same minibatches (37 points in batches of 5, so the last one is smaller, 2 epochs; ``minibatches``
without a generator draws its order from the global generator, which the probe seeds, and so does the
replay): W and b within 1e-4, each epoch's train_loss within 1e-5 relative. The fast loop gets one
minibatch per epoch (37 points, batch size 64), so the order inside it does not matter: its starting
parameters are read when it creates its torch.optim.SGD and 3 steps of plain gradient descent on the mean
cross-entropy are replayed from them; the trained net's log-probabilities (``log_softmax`` of its
outputs, so a model that ends in ``LogSoftmax`` with ``NLLLoss`` is the same) within 1e-4. Over grading
seeds 0-19 (benchmarks/calibrate_softmax_regression.py) the reference passes both checks under every seed,
and each of these wrong methods is rejected under 20 of 20: an epoch loss averaged over batch means, the
step divided by the batch size twice, SGD with momentum 0.9, softmax before nn.CrossEntropyLoss.

No grader reads a data file: everything is made here with seeded generators (the Fashion-MNIST part of
the lesson is a demo).
"""
import math
import os

import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.tasks import Task

ASSIGNMENT = "05-softmax-regression"
TASKS = [
    Task("softmax_stable", 2, "Row-wise softmax, stable for large logits, input unchanged"),
    Task("softmax_cross_entropy", 2, "Mean cross-entropy from logits via log-sum-exp"),
    Task("softmax_regression_model", 1, "Parameters and logits of softmax regression"),
    Task("softmax_train_manual", 2, "Softmax regression trained from scratch with SGD"),
    Task("softmax_train_fast", 2, "nn.Linear + nn.CrossEntropyLoss, device-agnostic training"),
]

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

CONTRACT = {
    "softmax_stable": {
        "softmax of each row (over the classes, dim=1); rows sum to 1; same shape as O":
            ["test_softmax_odd_shape_float32", "test_softmax_float64_and_square"],
        "keeps the dtype of O (float32 in, float32 out; float64 in, float64 out)":
            ["test_softmax_odd_shape_float32", "test_softmax_float64_and_square"],
        "stable for logits like [1000, 0, -1000], all-equal rows and a single class": "test_softmax_stability",
        "O is not modified": ["test_softmax_odd_shape_float32", "test_softmax_stability"],
        "gradients flow to O": "test_softmax_gradients",
        "written with torch.exp and arithmetic, not torch.softmax": "not enforced: the graders judge what the "
                                                                    "function computes, and torch.softmax computes it right",
    },
    "softmax_cross_entropy": {
        "the mean loss over the batch as a 0-dimensional tensor": "test_cross_entropy_odd_shape",
        "in the dtype of O": ["test_cross_entropy_odd_shape", "test_cross_entropy_stability"],
        "stable form: finite for logits like [1000, 0, -1000], a single class": "test_cross_entropy_stability",
        "differentiable with respect to O, with the right gradient": "test_cross_entropy_gradients",
        "O and y are not modified": "test_cross_entropy_odd_shape",
    },
    "softmax_regression_model": {
        "init_softmax_params returns (W (d, C), b (C,)), float32 leaves that require grad": "test_init_params",
        "W ~ N(0, 0.01^2), b zeros": "test_init_params_values",
        "softmax_regression returns the logits X @ W + b of shape (N, C), no softmax":
            "test_model_logits_and_gradients",
        "gradients reach W and b": "test_model_logits_and_gradients",
    },
    "softmax_train_manual": {
        "minibatches(X, y, batch_size) in their order, the mean cross-entropy, backward(), sgd([W, b], lr, 1) "
        "once per minibatch": "test_train_manual_follows_the_method",
        "train_loss is the mean over each epoch's examples (a smaller last batch weighs less)":
            "test_train_manual_follows_the_method",
        "W and b trained in place, still leaves that require grad": "test_train_manual_outcome",
        "history {'epoch': [1..num_epochs], 'train_loss': [...]}": ["test_train_manual_outcome",
                                                                    "test_train_manual_odd_sizes"],
        "X and y are not modified": "test_train_manual_outcome",
        "any n, d, C and batch size (a smaller last batch)": "test_train_manual_odd_sizes",
        "the trained model's accuracy and loss on new data": "test_train_manual_outcome",
        "calls the notebook's softmax_regression and cross_entropy": "not enforced: a loop that computes the "
            "same logits and loss inline trains identically, which the method check compares",
    },
    "softmax_train_fast": {
        "softmax_net: an nn.Module from (N, d) to logits (N, C), d*C + C parameters": "test_train_fast_odd_sizes",
        "nn.CrossEntropyLoss() and torch.optim.SGD(net.parameters(), lr=lr), one step per batch":
            "test_train_fast_follows_the_method",
        "model and every batch on the device given": "test_train_fast_follows_the_device",
        "returns (net, history) with one train_loss per epoch": ["test_train_fast_outcome",
                                                                 "test_train_fast_follows_the_method"],
        "train_loss is the mean over each epoch's examples": "test_train_fast_follows_the_method",
        "the trained net's accuracy and loss on new data": "test_train_fast_outcome",
        "a shuffling DataLoader, fit(..., progress=False)": "not enforced: the order of the shuffled batches "
            "follows the global generator, which correct solutions use differently; an own loop trains the same",
        "device None picks CUDA when available": "not enforced: graders run without a GPU; the device "
                                                 "argument itself is checked",
    },
}


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base, seed=None):
    """The generator seed of one input: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * (grading_seed() if seed is None else seed)


# ------------------------------------------------------------------------------------------ inputs
def _logits(n, c, dtype, seed, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, c, generator=gen, dtype=torch.float64)).to(dtype)


def _labels(n, c, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, c, (n,), generator=gen)


def _extreme_logits(dtype):
    """Rows that break the naive formulas: +-1000 and equal entries, C = 3."""
    rows = [[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0],
            [1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 999.0, -1000.0]]
    return torch.tensor(rows, dtype=dtype)


EXTREME_LABELS = torch.tensor([2, 0, 1, 1, 2, 0, 1])


def _single_class_logits(dtype):
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


def initial_params(seed=0):
    """The W (d, C) ~ N(0, 0.01^2) and b = 0 the manual-training graders start from (grading seed ``seed``)."""
    W = 0.01 * torch.randn(NUM_INPUTS, NUM_CLASSES, generator=torch.Generator().manual_seed(_seed(5, seed)))
    return W, torch.zeros(NUM_CLASSES)


# ------------------------------------------------------------------------------------------ probes
def probe_apply(ns, name, O, y=None):
    """Call softmax(O) or cross_entropy(O, y); return the result and the arguments as they are afterwards."""
    import torch
    fn = ns.require(name)
    out = fn(O) if y is None else fn(O, y)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu()
    else:
        out = f"a {type(out).__name__}"
    after = {"out": out, "O_after": O.detach().clone()}
    if y is not None:
        after["y_after"] = y.detach().clone()
    return after


def probe_backward(ns, name, O, G, y=None):
    """Values, and O.grad after backward of sum(G * fn(O)) (or of fn(O, y)); O.grad stays None when no
    gradient reaches O."""
    import torch
    fn = ns.require(name)
    O = O.clone().requires_grad_()
    out = fn(O) if y is None else fn(O, y)
    if not isinstance(out, torch.Tensor):
        return {"out": f"a {type(out).__name__}", "grad": None}
    try:
        (out * G).sum().backward() if y is None else out.sum().backward()
    except RuntimeError:
        pass
    return {"out": out.detach(), "grad": None if O.grad is None else O.grad.detach()}


def probe_jacobian(ns, name, O, points, y=None):
    """fn (with y fixed) at each of the given points, and at O the gradient of each output entry with
    respect to O by autograd (None where none reaches O)."""
    import torch
    fn = ns.require(name)

    def f(inp):
        return fn(inp) if y is None else fn(inp, y)

    values = []
    for point in points:
        value = f(point.clone())
        values.append(value.detach().clone() if isinstance(value, torch.Tensor) else f"a {type(value).__name__}")
    O = O.clone().requires_grad_()
    out = f(O)
    rows = []
    if isinstance(out, torch.Tensor):
        flat = out.reshape(-1)
        for k in range(flat.numel()):
            try:
                (grad,) = torch.autograd.grad(flat[k], O, retain_graph=True, allow_unused=True)
            except RuntimeError:
                grad = None
            rows.append(None if grad is None else grad.detach().clone())
    return {"values": values, "rows": rows}


def probe_init_params(ns, num_inputs, num_outputs, G_W, G_b):
    """init_softmax_params' W and b, the shape of softmax_regression's logits with them, and their .grad
    after one backward pass of sum(G_W * W) + sum(G_b * b) (None where no gradient lands)."""
    import warnings

    import torch
    torch.manual_seed(0)
    result = ns.require("init_softmax_params")(num_inputs, num_outputs)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"returned a {type(result).__name__}, not a tuple (W, b)"}
    out = {}
    for key, p in zip(("W", "b"), result):
        if not isinstance(p, torch.Tensor):
            return {"error": f"returned {key} as a {type(p).__name__}, not a tensor"}
        out[key] = p.detach().clone()
    W, b = result
    X = torch.ones(5, num_inputs)
    O = ns.require("softmax_regression")(X, W, b)
    out["O_shape"] = tuple(O.shape) if isinstance(O, torch.Tensor) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # reading .grad of a non-leaf warns
        try:
            ((W * G_W).sum() + (b * G_b).sum()).backward()
        except RuntimeError:
            pass
        out["W_grad"] = None if W.grad is None else W.grad.detach().clone()
        out["b_grad"] = None if b.grad is None else b.grad.detach().clone()
    return out


def probe_model(ns, X, W, b, G):
    """Logits of softmax_regression(X, W, b) and the gradients of sum(G * O) for W and b."""
    import torch
    W = W.clone().requires_grad_()
    b = b.clone().requires_grad_()
    O = ns.require("softmax_regression")(X, W, b)
    if not isinstance(O, torch.Tensor):
        return {"O": f"a {type(O).__name__}"}
    if O.requires_grad and O.shape == G.shape:
        (O * G).sum().backward()
    return {"O": O.detach(), "W_grad": None if W.grad is None else W.grad.detach(),
            "b_grad": None if b.grad is None else b.grad.detach()}


def probe_train_manual(ns, X, y, W0, b0, lr, num_epochs, batch_size, seed, offset, scale, G_W, G_b):
    """Train the caller's W, b with train_softmax; return them, the history, X and y as they are afterwards,
    and W.grad, b.grad after one more backward pass of sum(G_W * W) + sum(G_b * b).

    While it runs, ``softmax_regression`` and ``cross_entropy`` are the grader's own: logits shifted by a
    constant ``offset`` per class and the mean cross-entropy times ``scale`` (the judging process replays
    exactly these), so that only the training loop is judged here.
    """
    import contextlib
    import io
    import warnings

    import torch
    import torch.nn.functional as F
    train = ns.require("train_softmax")
    graders = {"cross_entropy": lambda O, y: scale * F.cross_entropy(O, y),
               "softmax_regression": lambda X, W, b: X @ W + (b + offset)}
    saved = {name: ns.globals[name] for name in graders if name in ns.globals}
    torch.manual_seed(seed)
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    ns.globals.update(graders)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
            history = train(W, b, X, y, lr, num_epochs, batch_size)
    finally:
        for name in graders:
            if name in saved:
                ns.globals[name] = saved[name]
            else:
                ns.globals.pop(name, None)
    if isinstance(history, dict):
        plain = {}
        for key, values in history.items():
            try:
                plain[str(key)] = [float(v.item() if isinstance(v, torch.Tensor) else v) for v in values]
            except (TypeError, ValueError, RuntimeError):
                plain[str(key)] = None
    else:
        plain = f"a {type(history).__name__}"
    out = {"W": W.detach().clone(), "b": b.detach().clone(), "history": plain,
           "X_after": X.detach().clone(), "y_after": y.detach().clone()}
    W.grad, b.grad = None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ((W * G_W).sum() + (b * G_b).sum()).backward()
        except RuntimeError:
            pass
    out["W_grad"] = None if W.grad is None else W.grad.detach().clone()
    out["b_grad"] = None if b.grad is None else b.grad.detach().clone()
    return out


def probe_train_fast(ns, X, y, num_classes, lr, num_epochs, batch_size, seed, X_eval, device):
    """Train with train_softmax_fast; return the trained net's logits for X_eval and the history."""
    import contextlib
    import io

    import torch
    from torch import nn
    train = ns.require("train_softmax_fast")
    torch.manual_seed(seed)
    with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
        result = train(X, y, num_classes, lr, num_epochs, batch_size, device=device)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"train_softmax_fast returned a {type(result).__name__}, not a tuple (net, history)"}
    net, history = result
    if not isinstance(net, nn.Module):
        return {"error": f"train_softmax_fast returned a {type(net).__name__} as the net, not an nn.Module"}
    params = list(net.parameters())
    where = params[0].device if params else torch.device("cpu")
    net.eval()
    with torch.no_grad():
        O = net(X_eval.to(where))
    if not isinstance(O, torch.Tensor):
        return {"error": f"the trained net returned a {type(O).__name__}, not a tensor of logits"}
    if isinstance(history, dict):
        plain = {}
        for key, values in history.items():
            try:
                plain[str(key)] = [float(v.item() if isinstance(v, torch.Tensor) else v) for v in values]
            except (TypeError, ValueError, RuntimeError):
                plain[str(key)] = None
        history = plain
    else:
        history = f"a {type(history).__name__}"
    return {"O": O.detach().cpu().float(), "history": history, "device": str(where)}


def probe_fast_device(ns, X, y):
    """Run train_softmax_fast with device=meta and a stand-in for fit that records where things are.

    Without a GPU, the meta device shows whether the model and the batches follow ``device``: a stand-in
    for ``fit`` (the real one needs numbers, which meta tensors do not have) looks at the net's
    parameters and at one batch of train_iter. If the notebook's code does not call ``fit``, nothing
    is recorded and nothing can be concluded.
    """
    import contextlib
    import io

    import torch
    train = ns.require("train_softmax_fast")
    seen = {}

    def fit_stand_in(net, loss_fn, optimizer, train_iter, num_epochs, *args, **kwargs):
        seen["net"] = sorted({p.device.type for p in net.parameters()})
        batch = next(iter(train_iter))
        seen["batch"] = sorted({t.device.type for t in batch if isinstance(t, torch.Tensor)})
        return {"epoch": list(range(1, num_epochs + 1)), "train_loss": [0.0] * num_epochs}

    had_fit, saved = "fit" in ns.globals, ns.globals.get("fit")
    ns.globals["fit"] = fit_stand_in
    error = None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            train(X, y, 4, 0.1, 1, 8, device=torch.device("meta"))
    except Exception as exc:  # noqa: BLE001 - meta tensors cannot give numbers; judged only with ``seen``
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        if had_fit:
            ns.globals["fit"] = saved
        else:
            ns.globals.pop("fit", None)
    return {"seen": seen, "error": error}


def probe_net(ns, num_inputs, num_outputs, X):
    import torch
    from torch import nn
    torch.manual_seed(0)
    net = ns.require("softmax_net")(num_inputs, num_outputs)
    if not isinstance(net, nn.Module):
        return {"error": f"softmax_net returned a {type(net).__name__}, not an nn.Module"}
    trainable = [p.detach().clone() for p in net.parameters() if p.requires_grad]
    with torch.no_grad():
        O = net(X)
    return {"O": O.detach() if isinstance(O, torch.Tensor) else f"a {type(O).__name__}", "trainable": trainable}


def probe_init_values(ns, num_inputs, num_outputs):
    import torch
    torch.manual_seed(3)
    result = ns.require("init_softmax_params")(num_inputs, num_outputs)
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not all(
            isinstance(t, torch.Tensor) for t in result):
        return {"error": f"returned a {type(result).__name__}, not a tuple of two tensors (W, b)"}
    return {"W": result[0].detach().clone(), "b": result[1].detach().clone()}


def probe_train_fast_traced(ns, X, y, num_classes, lr, num_epochs, batch_size, seed, X_eval):
    """train_softmax_fast with torch.optim.SGD replaced by a subclass that records the starting parameters."""
    import contextlib
    import io

    import torch
    train = ns.require("train_softmax_fast")
    real_sgd = torch.optim.SGD
    created = []

    class SGD(real_sgd):
        def __init__(self, params, *args, **kwargs):
            params = list(params)
            super().__init__(params, *args, **kwargs)
            group = self.param_groups[0]
            created.append({"start": [p.detach().cpu().clone() for g in self.param_groups for p in g["params"]],
                            "lr": float(group["lr"]), "momentum": float(group.get("momentum", 0.0)),
                            "weight_decay": float(group.get("weight_decay", 0.0))})

    aliases = [name for name, value in ns.globals.items() if value is real_sgd]
    torch.optim.SGD = SGD
    for name in aliases:
        ns.globals[name] = SGD
    try:
        torch.manual_seed(seed)
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
            result = train(X, y, num_classes, lr, num_epochs, batch_size, device=torch.device("cpu"))
    finally:
        torch.optim.SGD = real_sgd
        for name in aliases:
            ns.globals[name] = real_sgd
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"train_softmax_fast returned a {type(result).__name__}, not a tuple (net, history)"}
    net, history = result
    net.eval()
    with torch.no_grad():
        O = net(X_eval)
    out = {"O": O.detach().cpu().clone(), "created": created}
    if isinstance(history, dict) and isinstance(history.get("train_loss"), (list, tuple)):
        out["train_loss"] = [float(v) for v in history["train_loss"]]
    return out


# ---------------------------------------------------------------------------------------- helpers
def _expect_result(out, what):
    value = out["out"] if isinstance(out, dict) and "out" in out else out
    if isinstance(value, str):
        fail(f"{what} should return a tensor, but it returned {value}.")
    return value


def _unchanged(after, before):
    """Whether ``after`` (an argument as the student's process returned it after the call) equals ``before``."""
    return (isinstance(after, torch.Tensor) and after.dtype == before.dtype and after.shape == before.shape
            and torch.equal(after, before))


def _check_softmax(student, O, what, tol):
    """softmax(O) against torch.softmax in float64; O unchanged; rows sum to 1."""
    out = student.probe(probe_apply, "softmax", O, label="`softmax`")
    P = _expect_result(out, "`softmax`")
    expect(_unchanged(out["O_after"], O), f"softmax(O) modified O, the caller's logits, for {what}: compute the "
                                          f"shifted logits as a new tensor (O - shift), not in place.")
    expect_tensor(P, f"softmax(O) for {what}", shape=tuple(O.shape), dtype=O.dtype)
    expected = torch.softmax(O.double(), dim=1)
    expect(bool(torch.isfinite(P).all()),
           f"softmax(O) contains inf or NaN for {what}: shift each row by its maximum before exp.")
    sums = P.double().sum(dim=1)
    sum_tol = max(1e-5, 10 * tol["atol"])
    expect(bool(torch.allclose(sums, torch.ones_like(sums), atol=sum_tol, rtol=0)),
           f"The rows of softmax(O) should sum to 1 (within {sum_tol:g}) for {what}, but row sums range from "
           f"{sums.min().item():.4g} to {sums.max().item():.4g}: normalise each row (over the classes, dim=1).")
    expect_close(P, expected, f"softmax(O) for {what}", **tol)


def _check_cross_entropy(student, O, y, what, tol):
    out = student.probe(probe_apply, "cross_entropy", O, y, label="`cross_entropy`")
    loss = _expect_result(out, "`cross_entropy`")
    expect(_unchanged(out["O_after"], O) and _unchanged(out["y_after"], y),
           f"cross_entropy(O, y) modified its inputs for {what}: compute shifted logits as a new tensor "
           f"(O - shift), not in place.")
    expect_tensor(loss, f"cross_entropy(O, y) for {what}")
    expect(loss.numel() == 1, f"cross_entropy(O, y) should return the mean loss over the batch, a single "
                              f"number, but for {what} it returned shape {tuple(loss.shape)}.")
    expect(loss.dim() == 0, f"cross_entropy(O, y) should return a 0-dimensional tensor (shape ()), but for {what} "
                            f"it returned shape {tuple(loss.shape)}: reduce with .mean() over all entries, or "
                            f"pick the true class with log_probs[torch.arange(N), y], which is (N,).")
    expect(loss.dtype == O.dtype, f"cross_entropy(O, y) should keep the dtype of O ({O.dtype}), "
                                  f"but it returned {loss.dtype} for {what}.")
    expect(bool(torch.isfinite(loss).all()),
           f"cross_entropy(O, y) is inf or NaN for {what}: compute it from the logits with log-sum-exp, "
           f"not as -log(softmax(O)).")
    expected = F.cross_entropy(O.double(), y)
    expect_close(loss.reshape(()), expected, f"cross_entropy(O, y) for {what}", **tol)


def _oracle_softmax_grad(O, G):
    O = O.double().clone().requires_grad_()
    (torch.softmax(O, dim=1) * G).sum().backward()
    return O.grad


def _oracle_ce_grad(O, y):
    O = O.double().clone().requires_grad_()
    F.cross_entropy(O, y).backward()
    return O.grad


def _check_backward(student, name, O, what, G=None, y=None):
    out = student.probe(probe_backward, name, O, G, y, label=f"`{name}`")
    value = _expect_result(out, f"`{name}`")
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


def _check_gradcheck(student, name, O, y=None):
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


# ------------------------------------------------------------------------------------- softmax_stable
@pytest.mark.softmax_stable
def test_softmax_odd_shape_float32(student):
    _check_softmax(student, _logits(37, 4, torch.float32, seed=_seed(1)), "float32 logits of shape (37, 4)", F32)


@pytest.mark.softmax_stable
def test_softmax_float64_and_square(student):
    _check_softmax(student, _logits(37, 4, torch.float64, seed=_seed(2)), "float64 logits of shape (37, 4)", F64)
    _check_softmax(student, _logits(5, 5, torch.float64, seed=_seed(3)), "float64 logits of shape (5, 5)", F64)


@pytest.mark.softmax_stable
def test_softmax_stability(student):
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32_EXTREME)):
        _check_softmax(student, _extreme_logits(dtype),
                       f"{str(dtype).replace('torch.', '')} rows like [1000, 0, -1000] and all-equal rows", tol)
    _check_softmax(student, _single_class_logits(torch.float64), "a single class (C = 1, shape (4, 1))", F64)


@pytest.mark.softmax_stable
def test_softmax_gradients(student):
    O = _logits(6, 4, torch.float64, seed=_seed(4))
    G = _logits(6, 4, torch.float64, seed=_seed(5), scale=1.0)
    _check_backward(student, "softmax", O, "float64 logits of shape (6, 4)", G=G)
    _check_gradcheck(student, "softmax", O)
    O = _extreme_logits(torch.float64)
    _check_backward(student, "softmax", O, "rows like [1000, 0, -1000] (float64)",
                    G=_logits(*O.shape, torch.float64, seed=_seed(6), scale=1.0))


# -------------------------------------------------------------------------------- softmax_cross_entropy
@pytest.mark.softmax_cross_entropy
def test_cross_entropy_odd_shape(student):
    _check_cross_entropy(student, _logits(37, 4, torch.float32, seed=_seed(7)), _labels(37, 4, seed=_seed(8)),
                         "float32 logits of shape (37, 4)", {"atol": 1e-5, "rtol": 1e-5})
    _check_cross_entropy(student, _logits(37, 4, torch.float64, seed=_seed(9)), _labels(37, 4, seed=_seed(10)),
                         "float64 logits of shape (37, 4)", F64)


@pytest.mark.softmax_cross_entropy
def test_cross_entropy_stability(student):
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32_EXTREME)):
        _check_cross_entropy(student, _extreme_logits(dtype), EXTREME_LABELS,
                             f"{str(dtype).replace('torch.', '')} rows like [1000, 0, -1000] and all-equal rows",
                             tol)
    _check_cross_entropy(student, _single_class_logits(torch.float64), torch.zeros(4, dtype=torch.int64),
                         "a single class (C = 1, shape (4, 1))", F64)


@pytest.mark.softmax_cross_entropy
def test_cross_entropy_gradients(student):
    O, y = _logits(6, 4, torch.float64, seed=_seed(11)), _labels(6, 4, seed=_seed(12))
    _check_backward(student, "cross_entropy", O, "float64 logits of shape (6, 4)", y=y)
    _check_gradcheck(student, "cross_entropy", O, y)
    _check_backward(student, "cross_entropy", _extreme_logits(torch.float64),
                    "rows like [1000, 0, -1000] (float64)", y=EXTREME_LABELS)
    _check_backward(student, "cross_entropy", _single_class_logits(torch.float64),
                    "a single class (C = 1, float64)", y=torch.zeros(4, dtype=torch.int64))


# ----------------------------------------------------------------------------- softmax_regression_model
@pytest.mark.softmax_regression_model
def test_init_params(student):
    gen = torch.Generator().manual_seed(_seed(19))
    G_W, G_b = torch.randn(3, 4, generator=gen), torch.randn(4, generator=gen)
    out = student.probe(probe_init_params, 3, 4, G_W, G_b, label="`init_softmax_params`")
    if "error" in out:
        fail(f"init_softmax_params(3, 4) {out['error']}.")
    expect_tensor(out["W"], "W from init_softmax_params(3, 4)", shape=(3, 4), dtype=torch.float32, finite=True)
    expect_tensor(out["b"], "b from init_softmax_params(3, 4)", shape=(4,), dtype=torch.float32, finite=True)
    for key, G in (("W", G_W), ("b", G_b)):
        _expect_gradient_lands(out[f"{key}_grad"], G,
                               f"{key} from init_softmax_params should be a leaf tensor that requires grad",
                               CREATE_A_LEAF)
    expect(out["O_shape"] == (5, 4), f"softmax_regression(X, W, b) with X of shape (5, 3) and your initial "
                                     f"parameters should return logits of shape (5, 4), got {out['O_shape']}.")


@pytest.mark.softmax_regression_model
def test_model_logits_and_gradients(student):
    gen = torch.Generator().manual_seed(_seed(13))
    X = torch.randn(37, 3, generator=gen)
    W = torch.randn(3, 4, generator=gen)
    b = torch.randn(4, generator=gen)
    G = torch.randn(37, 4, generator=gen)
    out = student.probe(probe_model, X, W, b, G, label="`softmax_regression`")
    O = out["O"]
    if isinstance(O, str):
        fail(f"softmax_regression(X, W, b) should return a tensor, but it returned {O}.")
    expect_tensor(O, "softmax_regression(X, W, b) for X (37, 3), W (3, 4), b (4,)", shape=(37, 4))
    expect_close(O, X.double() @ W.double() + b.double(),
                 "softmax_regression(X, W, b) (the logits X @ W + b, without softmax)", atol=1e-5, rtol=1e-5)
    expect(out["W_grad"] is not None and out["b_grad"] is not None,
           "After backward through softmax_regression, W.grad or b.grad is None: the logits must be "
           "computed from W and b with torch operations.")
    expect_close(out["W_grad"], X.double().T @ G.double(), "the gradient of the logits with respect to W",
                 atol=1e-4, rtol=1e-5)
    expect_close(out["b_grad"], G.double().sum(dim=0), "the gradient of the logits with respect to b",
                 atol=1e-4, rtol=1e-5)


CREATE_A_LEAF = ("(a tensor computed from another one, e.g. torch.randn(..., requires_grad=True) * 0.01, is not a "
                 "leaf; a tensor made without requires_grad gets no gradient). Create it, then call "
                 ".requires_grad_(), or pass requires_grad=True when creating it.")
KEEP_A_LEAF = ("(its requires_grad was turned off, e.g. by .requires_grad_(False) or .detach_()). Update W and b in "
               "place under torch.no_grad(), as sgd does, and leave them requiring grad.")


def _expect_gradient_lands(grad, G, what, advice):
    """A backward pass of sum(G * p) must leave exactly G in p.grad (only a leaf that requires grad gets one)."""
    if grad is None:
        fail(f"{what}: after a backward pass through it, its .grad is None, so gradient descent cannot update it "
             f"{advice}")
    expect(tuple(grad.shape) == tuple(G.shape)
           and bool(torch.allclose(grad.double(), G.double(), rtol=0, atol=1e-6)),
           f"{what}: a backward pass through it does not leave its gradient in its .grad (tolerance 1e-6).")


# ------------------------------------------------------------------------------- softmax_train_manual
def manual_outcome(student, seed=None):
    """Train the student's manual pipeline on the grader's blobs; returns (accuracy, loss), probe output.

    ``seed`` is the grading seed (default: COURSE_GRADING_SEED): the data, the initial W and the
    training seed follow it.
    """
    seed = grading_seed() if seed is None else seed
    X_train, y_train, X_test, y_test = training_data(seed)
    W0, b0 = initial_params(seed)
    out = _train_manual(student, X_train, y_train, W0, b0, LR, NUM_EPOCHS, BATCH_SIZE, TRAIN_SEED + seed)
    W, b = out["W"], out["b"]
    expect_tensor(W, "W after train_softmax", shape=(NUM_INPUTS, NUM_CLASSES))
    expect_tensor(b, "b after train_softmax", shape=(NUM_CLASSES,))
    O = X_test.double() @ W.double() + (b + LOGIT_OFFSET).double()
    return _score(O, y_test), out


def _train_manual(student, X, y, W0, b0, lr, num_epochs, batch_size, seed):
    """The student's train_softmax from W0, b0 at learning rate lr, as the grader runs it (see LOGIT_OFFSET):
    the probe's output, with the caller's W and b as given to train_softmax under "W0", "b0", and the
    gradients that a backward pass should leave in W.grad and b.grad under "G_W", "G_b"."""
    gen = torch.Generator().manual_seed(seed + 7)
    G_W, G_b = torch.randn(*W0.shape, generator=gen), torch.randn(*b0.shape, generator=gen)
    W_start, b_start = W0.clone(), b0 - LOGIT_OFFSET
    out = student.probe(probe_train_manual, X, y, W_start, b_start, lr / LOSS_SCALE, num_epochs, batch_size, seed,
                        LOGIT_OFFSET, LOSS_SCALE, G_W, G_b, label="`train_softmax`")
    out.update({"W0": W_start, "b0": b_start, "G_W": G_W, "G_b": G_b})
    return out


def _score(O, y):
    accuracy = (O.argmax(dim=1) == y).double().mean().item()
    loss = F.cross_entropy(O.double(), y).item() if torch.isfinite(O).all() else math.inf
    return accuracy, loss


def _expect_outcome(accuracy, loss, what, lr=LR):
    hint = ""
    if accuracy >= MIN_ACCURACY and loss > MAX_LOSS:
        hint = (" A good accuracy with a high loss means the logits are badly scaled: check that the model "
                "outputs raw logits, that the loss is the mean cross-entropy of those logits, and the size "
                "of each step.")
    expect(accuracy >= MIN_ACCURACY and loss <= MAX_LOSS,
           f"{what} reached held-out accuracy {accuracy:.3f} (needed >= {MIN_ACCURACY}) and held-out mean "
           f"cross-entropy {loss:.3f} (needed <= {MAX_LOSS}) on well-separated blobs with 4 classes "
           f"(lr {lr:g}, {NUM_EPOCHS} epochs, batches of {BATCH_SIZE}).{hint}")


@pytest.mark.softmax_train_manual
def test_train_manual_outcome(student):
    seed = grading_seed()
    (accuracy, loss), out = manual_outcome(student, seed)
    X_train, y_train, _, _ = training_data(seed)
    expect(not (torch.equal(out["W"], out["W0"]) and torch.equal(out["b"], out["b0"])),
           "After train_softmax(W, b, ...), the caller's W and b still hold their initial values: update "
           "them in place (sgd does, under torch.no_grad()) instead of rebinding the names.")
    for key in ("W", "b"):
        _expect_gradient_lands(out[f"{key}_grad"], out[f"G_{key}"],
                               f"After train_softmax, {key} should still be a leaf tensor that requires grad",
                               KEEP_A_LEAF)
    expect(_unchanged(out["X_after"], X_train) and _unchanged(out["y_after"], y_train),
           "train_softmax modified X or y: the training data must stay unchanged.")
    expect(bool(torch.isfinite(out["W"]).all() and torch.isfinite(out["b"]).all()),
           "After train_softmax, W or b contains inf or NaN: the training diverged.")
    _expect_outcome(accuracy, loss, "Softmax regression trained by train_softmax", lr=LR / LOSS_SCALE)
    history = out["history"]
    if not isinstance(history, dict):
        fail(f"train_softmax should return the history dict, but it returned {history}.")
    expect(history.get("epoch") == list(range(1, NUM_EPOCHS + 1)),
           f"history['epoch'] should be [1, ..., num_epochs], got {history.get('epoch')}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, list) and len(losses) == NUM_EPOCHS and all(math.isfinite(v) for v in losses),
           f"history['train_loss'] should hold one finite number per epoch ({NUM_EPOCHS}), got {losses}.")


@pytest.mark.softmax_train_manual
def test_train_manual_odd_sizes(student):
    gen = torch.Generator().manual_seed(_seed(14))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = _train_manual(student, X, y, torch.zeros(3, 4), torch.zeros(4), 0.1, 2, 5, grading_seed())
    expect_tensor(out["W"], "W after train_softmax with n=37, d=3, C=4, batches of 5", shape=(3, 4), finite=True)
    expect_tensor(out["b"], "b after train_softmax with n=37, d=3, C=4, batches of 5", shape=(4,), finite=True)
    history = out["history"]
    expect(isinstance(history, dict) and isinstance(history.get("train_loss"), list)
           and len(history["train_loss"]) == 2,
           "train_softmax(..., num_epochs=2, ...) should return a history with 2 train_loss entries.")


# --------------------------------------------------------------------------------- softmax_train_fast
def fast_outcome(student, seed=None):
    """Train the student's fast pipeline on the grader's blobs; returns (accuracy, loss), probe output.

    ``seed`` is the grading seed (default: COURSE_GRADING_SEED): the data and the training seed follow it.
    """
    seed = grading_seed() if seed is None else seed
    X_train, y_train, X_test, y_test = training_data(seed)
    out = student.probe(probe_train_fast, X_train, y_train, NUM_CLASSES, LR, NUM_EPOCHS, BATCH_SIZE,
                        TRAIN_SEED + seed, X_test, torch.device("cpu"), label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    expect_tensor(out["O"], "the trained net's output for held-out inputs of shape (400, 3)",
                  shape=(len(X_test), NUM_CLASSES))
    return _score(out["O"], y_test), out


@pytest.mark.softmax_train_fast
def test_train_fast_outcome(student):
    (accuracy, loss), out = fast_outcome(student)
    _expect_outcome(accuracy, loss, "The net trained by train_softmax_fast (its outputs read as logits)")
    history = out["history"]
    if not isinstance(history, dict):
        fail(f"train_softmax_fast should return (net, history) with the history dict of fit, got {history}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, list) and len(losses) == NUM_EPOCHS,
           f"The history of train_softmax_fast should hold one train_loss per epoch ({NUM_EPOCHS}).")


@pytest.mark.softmax_train_fast
def test_train_fast_odd_sizes(student):
    gen = torch.Generator().manual_seed(_seed(15))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = student.probe(probe_net, 3, 4, X, label="`softmax_net`")
    if "error" in out:
        fail(out["error"] + ".")
    if isinstance(out["O"], str):
        fail(f"softmax_net(3, 4) applied to X of shape (37, 3) should return a tensor, got {out['O']}.")
    expect_tensor(out["O"], "softmax_net(3, 4) applied to X of shape (37, 3)", shape=(37, 4))
    n_params = sum(p.numel() for p in out["trainable"])
    expect(n_params == 3 * 4 + 4,
           f"softmax_net(3, 4) should have 16 trainable parameters (a weight per input and class, a bias per "
           f"class), but it has {n_params}.")
    out = student.probe(probe_train_fast, X, y, 4, 0.1, 2, 5, grading_seed(), X, None,
                        label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    expect_tensor(out["O"], "the output of the net trained by train_softmax_fast with n=37, d=3, C=4, "
                            "batches of 5", shape=(37, 4), finite=True)


@pytest.mark.softmax_train_fast
def test_train_fast_follows_the_device(student):
    gen = torch.Generator().manual_seed(_seed(16))
    X = torch.randn(37, 3, generator=gen)
    y = torch.randint(0, 4, (37,), generator=gen)
    out = student.probe(probe_fast_device, X, y, label="`train_softmax_fast`")
    seen = out["seen"]
    if not seen:
        return  # the notebook trains without fit: the device cannot be checked this way
    expect(seen.get("net") == ["meta"] and seen.get("batch") == ["meta"],
           f"train_softmax_fast(..., device=device) should put the model and every batch on that device: "
           f"checked with a device other than the CPU, the model's parameters were on {seen.get('net')} and "
           f"the batches given to fit on {seen.get('batch')}. Note that X.to(device) returns a new tensor "
           f"(keep the result), while net.to(device) moves the module itself.")



@pytest.mark.softmax_regression_model
def test_init_params_values(student):
    out = student.probe(probe_init_values, 400, 10, label="`init_softmax_params`")
    if "error" in out:
        fail(f"init_softmax_params(400, 10) {out['error']}.")
    W = expect_tensor(out["W"], "W from init_softmax_params(400, 10)", shape=(400, 10), dtype=torch.float32,
                      finite=True).double()
    b = expect_tensor(out["b"], "b from init_softmax_params(400, 10)", shape=(10,), dtype=torch.float32)
    expect(bool((b == 0).all()), f"b from init_softmax_params should be zeros, but it is {b.tolist()}.")
    std, mean = W.std().item(), W.mean().item()
    # 4000 draws: the standard error of the std is 0.01 / 89, of the mean 0.01 / 63; both bands are 6+ of them.
    expect(0.009 <= std <= 0.011 and abs(mean) <= 0.001,
           f"The entries of W should be drawn from N(0, 0.01^2); over the 4000 entries of init_softmax_params(400, "
           f"10) their mean is {mean:.3g} and their standard deviation {std:.3g} (allowed: mean within 0.001 of 0, "
           f"standard deviation within 10% of 0.01).")


def replay_manual(X, y, W0, b0, lr, num_epochs, batch_size, seed):
    """The loop of the instructions in the judging process, with the grader's softmax_regression and
    cross_entropy of the manual loop (LOGIT_OFFSET, LOSS_SCALE): (W, b, train_loss per epoch)."""
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)   # the same stream as torch.manual_seed(seed) in the probe
    losses = []
    for _ in range(num_epochs):
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            loss = LOSS_SCALE * F.cross_entropy(X[rows] @ W + (b + LOGIT_OFFSET), y[rows])
            loss.backward()
            with torch.no_grad():
                for p in (W, b):
                    p -= lr * p.grad
                    p.grad.zero_()
            total += loss.item() * len(rows)
        losses.append(total / len(X))
    return W.detach(), b.detach(), losses


@pytest.mark.softmax_train_manual
def test_train_manual_follows_the_method(student):
    seed = grading_seed()
    gen = torch.Generator().manual_seed(_seed(17))
    X = torch.randn(TRACE_N, NUM_INPUTS, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (TRACE_N,), generator=gen)
    W0 = 0.01 * torch.randn(NUM_INPUTS, NUM_CLASSES, generator=gen)
    b0 = torch.zeros(NUM_CLASSES)
    out = _train_manual(student, X, y, W0, b0, TRACE_LR, TRACE_EPOCHS, TRACE_BATCH, seed)
    W, b, losses = replay_manual(X, y, out["W0"], out["b0"], TRACE_LR / LOSS_SCALE, TRACE_EPOCHS, TRACE_BATCH, seed)
    got = torch.cat([expect_tensor(out["W"], "W after train_softmax", shape=(NUM_INPUTS, NUM_CLASSES)).reshape(-1),
                     expect_tensor(out["b"], "b after train_softmax", shape=(NUM_CLASSES,)).reshape(-1)]).double()
    want = torch.cat([W.reshape(-1), b.reshape(-1)]).double()
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {TRACE_EPOCHS} epochs on {TRACE_N} examples (lr {TRACE_LR / LOSS_SCALE:g}, minibatches of {TRACE_BATCH}), W and "
           f"b differ by up to {worst:.3g} from what the loop described in the instructions gives from the same "
           f"start (tolerance {TOL_TRACE_PARAMS:g}). Check that you iterate over minibatches(X, y, batch_size), "
           f"take one step of sgd([W, b], lr, 1) per minibatch on the batch's mean cross-entropy (the mean is "
           f"already divided by the batch size), and nothing else changes W and b.")
    history = out["history"]
    reported = history.get("train_loss") if isinstance(history, dict) else None
    expect(isinstance(reported, list) and len(reported) == TRACE_EPOCHS,
           f"train_softmax should return a history whose 'train_loss' holds one number per epoch ({TRACE_EPOCHS}).")
    for epoch, (value, expected) in enumerate(zip(reported, losses), start=1):
        expect(value is not None and abs(value - expected) <= TOL_TRACE_LOSS * max(1.0, abs(expected)),
               f"In epoch {epoch}, train_softmax reports train_loss {value}, but the mean loss over that "
               f"epoch's examples is {expected:.6g} (relative tolerance {TOL_TRACE_LOSS:g}). With {TRACE_N} "
               f"examples in batches of {TRACE_BATCH} the last batch is smaller: weigh each batch's loss by its "
               f"size.")


@pytest.mark.softmax_train_fast
def test_train_fast_follows_the_method(student):
    gen = torch.Generator().manual_seed(_seed(18))
    X = torch.randn(TRACE_N, NUM_INPUTS, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (TRACE_N,), generator=gen)
    X_eval = torch.randn(20, NUM_INPUTS, generator=gen)
    out = student.probe(probe_train_fast_traced, X, y, NUM_CLASSES, FAST_TRACE_LR, FAST_TRACE_EPOCHS,
                        FAST_TRACE_BATCH, grading_seed(), X_eval, label="`train_softmax_fast`")
    if "error" in out:
        fail(out["error"] + ".")
    created = out["created"]
    expect(len(created) >= 1, "train_softmax_fast should train with torch.optim.SGD(net.parameters(), lr=lr); no "
                              "torch.optim.SGD was created.")
    start, opts = created[-1]["start"], created[-1]
    weights = [t for t in start if tuple(t.shape) == (NUM_CLASSES, NUM_INPUTS)]
    biases = [t for t in start if tuple(t.shape) == (NUM_CLASSES,)]
    expect(len(start) == 2 and len(weights) == 1 and len(biases) == 1,
           f"train_softmax_fast should optimise the weight and bias of one nn.Linear({NUM_INPUTS}, {NUM_CLASSES}); "
           f"the optimizer was given tensors of shapes {[tuple(t.shape) for t in start]}.")
    expect(opts["lr"] == FAST_TRACE_LR and opts["momentum"] == 0 and opts["weight_decay"] == 0,
           f"train_softmax_fast should use torch.optim.SGD(net.parameters(), lr=lr) with the lr it is given "
           f"({FAST_TRACE_LR}) and nothing else; it used lr={opts['lr']:g}, momentum={opts['momentum']:g}, "
           f"weight_decay={opts['weight_decay']:g}.")
    W = weights[0].T.clone().requires_grad_()
    b = biases[0].clone().requires_grad_()
    losses = []
    for _ in range(FAST_TRACE_EPOCHS):   # one minibatch per epoch: plain gradient descent
        loss = F.cross_entropy(X @ W + b, y)
        loss.backward()
        with torch.no_grad():
            for p in (W, b):
                p -= FAST_TRACE_LR * p.grad
                p.grad.zero_()
        losses.append(loss.item())
    O = expect_tensor(out["O"], "the trained net's output for 20 inputs", shape=(20, NUM_CLASSES))
    got = torch.log_softmax(O.double(), dim=1)
    want = torch.log_softmax((X_eval @ W + b).detach().double(), dim=1)
    worst = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
    expect(worst <= TOL_TRACE_PARAMS,
           f"After {FAST_TRACE_EPOCHS} epochs on {TRACE_N} examples in one batch (lr {FAST_TRACE_LR}), the trained "
           f"net's log-probabilities differ by up to {worst:.3g} from {FAST_TRACE_EPOCHS} steps of gradient descent on "
           f"the mean cross-entropy of its logits from the same start (tolerance {TOL_TRACE_PARAMS:g}). Check: the "
           f"model outputs logits (no softmax), nn.CrossEntropyLoss() with its default mean, gradients cleared "
           f"before each backward(), one optimizer.step() per batch.")
    reported = out.get("train_loss")
    expect(isinstance(reported, list) and len(reported) == FAST_TRACE_EPOCHS,
           f"The history of train_softmax_fast should hold one train_loss per epoch ({FAST_TRACE_EPOCHS}).")
    for epoch, (value, expected) in enumerate(zip(reported, losses), start=1):
        expect(abs(value - expected) <= TOL_TRACE_LOSS * max(1.0, abs(expected)),
               f"In epoch {epoch}, train_softmax_fast reports train_loss {value:.6g}, but the mean cross-entropy of "
               f"that epoch is {expected:.6g} (relative tolerance {TOL_TRACE_LOSS:g}).")
