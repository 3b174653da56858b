"""Graders for 07-mnist-cnn: the ConvNet, its train() / test() functions, and a single prediction.

One mistake costs one task: the probes of each task call only that task's objects. ``Net`` and
``make_optimizer`` are trained by a correct loop of the grader's own (not the student's ``train``), and
``train`` / ``test`` / ``predict_image`` are checked on small recording models, not on ``Net``.

Devices. ``train``, ``test`` and ``predict_image`` are also run with the model on PyTorch's ``meta``
device (a device with shapes but no data, so no GPU is needed): a batch left on the CPU raises "Tensor
on device cpu is not on the expected device meta!", as it would on a GPU. Meta tensors hold no values,
so during that run ``Tensor.item``, ``float()``, ``int()`` and ``.cpu()`` of a meta tensor read zeros;
an error other than a device mismatch on meta (e.g. ``.numpy()`` of a meta tensor) is not held against
the student (the CPU checks of the same task judge the values).

Dropout. The structure probe records every call of ``F.dropout`` / ``F.dropout2d`` (what ``nn.Dropout``
and ``nn.Dropout2d`` call too) during one forward pass in each mode: its rate, whether it is active,
and the features per image it acts on. ``Dropout2d`` where the table says dropout is accepted (the
published example does this, warning and all).

Accuracy (task mnist_cnn). The judge loads the MNIST test split (course.data), splits it with seed 0
into 8,000 training and 2,000 held-out images, normalises the held-out images and changes them by a
secret drawn for each grading (``autograder.heldout.disguise`` with HELDOUT_DISGUISE: Gaussian noise of
0.1 times the images' spread, no shift), and sends the first 4,000 training images with their labels and the changed held-out images
(never their labels) into the student's process. There the student's ``Net`` (built after
torch.manual_seed(seed)) with the student's ``make_optimizer`` is trained for one epoch by the grader's
own loop (batch 32, shuffled with ``seed``, F.nll_loss); the grader puts the model in eval mode and
returns the predictions; the judge computes the accuracy. ``seed`` is COURSE_GRADING_SEED (default 0).
The accuracy is measured only for a ``Net`` whose structure matches the table (its other graders say
what differs otherwise), which keeps the grading of a wrong architecture short.

The budget is small on purpose (one torch thread, 4,000 images, one epoch: 125 Adadelta steps), so
that a grading stays within seconds; with it the reference reaches about 0.93 rather than the 0.96 of a
full epoch over 8,000 images.

Calibration (python benchmarks/calibrate_mnist.py --lesson cnn --variants --verbose: the training probe
itself run on the reference notebook's code, grading seeds 0-19, each with its own disguise secret):
  reference (20 seeds)      held-out accuracy min 0.9070, median 0.9265, max 0.9465
                            (training loss min 0.196, median 0.239, max 0.310)
  Dropout2d as published, Adadelta lr 0.5 (a correct variant, 10 seeds): min 0.9110, median 0.9267,
                            max 0.9340
  dropout without training=self.training (predictions with dropout on; the closest wrong variant,
                            20 seeds): min 0.8280, median 0.8575, max 0.8900, so accuracy alone does not
                            separate it on every seed; the dropout checks of the same task do
  Adadelta lr 0.05, a tenth of the lesson's (5 seeds): min 0.8190, median 0.8235, max 0.8510
  The same held-out images without the disguise: seed 0 0.9345 (with it 0.9360); with a shift of up to
  one pixel as well (heldout's defaults) seed 0 fell to 0.866-0.874, hence HELDOUT_DISGUISE.
Threshold: accuracy >= 0.87 (0.037 below the reference minimum; 0.041 below the lowest correct variant).
A run (training and predicting) took a median 24.6 s in the calibration, on 2 cores shared with many
other jobs (load average 9-16).
"""

import os

import pytest
import torch

from autograder import heldout
from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task
from course import data

ASSIGNMENT = "07-mnist-cnn"
TASKS = [
    Task("cnn_train_test", 3, "train() for one epoch with logging, test() in eval mode"),
    Task("mnist_cnn", 4, "The ConvNet and its optimiser"),
    Task("predict_image", 1, "The predicted class of one image"),
]

CNN_ACCURACY_MIN = 0.87
CNN_TRAINING = {"n_train": 4000, "batch_size": 32}
CNN_PARAMETERS = 300_426
CNN_SHAPES = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (64, 4608), (64,), (10, 64), (10,)]
CNN_DROPOUT = [(0.25, 4608), (0.5, 64)]          # (rate, features per image it acts on), in order
MNIST_MEAN, MNIST_STD = data.MNIST_MEAN[0], data.MNIST_STD[0]
# Noise only, no shift: at this training budget a shift of one pixel costs the reference about 6 points
# of accuracy (seed 0: 0.9345 -> 0.866-0.874 over three secrets), while noise of 0.03 or 0.1 costs
# nothing measurable; noise alone already defeats exact and hashed lookups (tests/test_heldout.py).
HELDOUT_DISGUISE = {"max_shift": 0, "noise": 0.1}
DEVICE_ERRORS = ("is not on the expected device", "on the same device")

CONTRACT = {
    "cnn_train_test": {
        "train: net.train() first (test leaves the model in eval mode)": "test_train_mode_and_steps",
        "train: runs the model with gradients, once per batch of the epoch": "test_train_mode_and_steps",
        "train: optimizer.zero_grad(), F.nll_loss(net(X), y), loss.backward(), optimizer.step() per batch, "
        "with the optimizer it is given": "test_train_mode_and_steps",
        "train: moves X and y to `device` and keeps the returned tensors": "test_train_and_test_follow_the_device",
        "train: prints one line every log_interval batches (batch_idx % log_interval == 0)":
            "test_train_logs_and_returns_loss",
        "train: the printed line names the epoch": "test_train_logs_and_returns_loss",
        "train: the printed line holds the number of images seen and loss.item()":
            "not enforced: the wording and number format of the log line are the student's choice (the "
            "published example prints images before the batch, the reference after it)",
        "train: returns the epoch's mean training loss weighted by batch size (last batch smaller)":
            "test_train_logs_and_returns_loss",
        "train: returns a Python float": "test_train_logs_and_returns_loss",
        "train: works with a DataLoader (len(train_iter.dataset) may be used)":
            ["test_train_mode_and_steps", "test_train_and_test_follow_the_device"],
        "test: net.eval() and torch.no_grad()": "test_test_mode_and_no_grad",
        "test: moves X and y to `device` and keeps the returned tensors": "test_train_and_test_follow_the_device",
        "test: summed loss and correct predictions divided by the number of images, not batches":
            "test_test_averages",
        "test: returns (mean loss, accuracy) as Python floats, accuracy a fraction in [0, 1]":
            "test_test_averages",
        "test: prints one line": "test_test_averages",
    },
    "mnist_cnn": {
        "Net is an nn.Module (a subclass, or an nn.Sequential) built with no arguments": "test_cnn_parameters",
        "every layer with parameters is created in __init__ (300,426 parameters)": "test_cnn_parameters",
        "conv1 Conv2d(1, 16, kernel_size=3, stride=1), conv2 Conv2d(16, 32, 3, 1), fc1 Linear(4608, 64), "
        "fc2 Linear(64, 10)": ["test_cnn_parameters", "test_cnn_computes_the_table"],
        "ReLU after conv1, conv2 and fc1; max_pool2d(2) after conv2; flatten from dim 1 in channel order":
            "test_cnn_computes_the_table",
        "dropout 0.25 on the pooled features and 0.5 on the fc1 output, active in train() mode":
            "test_cnn_dropout_rates",
        "dropout off in eval() mode": "test_cnn_dropout_modes",
        "output (N, 10) log-probabilities (log_softmax over dim 1)": "test_cnn_output_log_probabilities",
        "flatten keeps the batch dimension (one row per image)": "test_cnn_keeps_the_batch",
        "nothing created on a fixed device inside forward": "test_cnn_runs_on_any_device",
        "make_optimizer(net) returns optim.Adadelta with lr=0.5 over net's parameters": "test_make_optimizer",
        "trained for one short epoch, Net reaches the calibrated accuracy on unseen images":
            "test_cnn_trains_to_accuracy",
    },
    "predict_image": {
        "returns a Python int": "test_predict_image",
        "returns the class with the highest score (argmax)": "test_predict_image",
        "adds the batch dimension: the network gets (1, 1, 28, 28)": "test_predict_image",
        "eval() mode and no gradients": "test_predict_image",
        "moves the image to the device of the network's parameters": "test_predict_image_follows_the_model",
    },
}


def grading_seed():
    """Seed of the graders' training run (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def normalize(images):
    """images: (N, 28, 28) uint8. Returns (N, 1, 28, 28) float32, normalised as the lesson does."""
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def heldout_inputs(images, secret):
    """images: (N, 28, 28) uint8 held-out images. Returns what the student's process receives:
    (N, 1, 28, 28) float32, normalised and disguised with ``secret`` (HELDOUT_DISGUISE)."""
    return heldout.disguise(normalize(images), secret, **HELDOUT_DISGUISE)


def table_weights(seed=11):
    """Fixed parameters of the table's ConvNet: a list of tensors, one per shape of CNN_SHAPES."""
    gen = torch.Generator().manual_seed(seed)
    weights = []
    for shape in CNN_SHAPES:
        fan_in = shape[1] * 9 if len(shape) == 4 else shape[1] if len(shape) == 2 else 100
        weights.append(torch.randn(shape, generator=gen) / fan_in ** 0.5)
    return weights


def table_forward(weights, X):
    """The table's ConvNet in eval mode with ``weights``: X (N, 1, 28, 28) -> (N, 10) log-probabilities."""
    import torch.nn.functional as F
    w1, b1, w2, b2, w3, b3, w4, b4 = weights
    X = F.relu(F.conv2d(X, w1, b1))
    X = F.max_pool2d(F.relu(F.conv2d(X, w2, b2)), 2)
    X = F.relu(F.linear(torch.flatten(X, 1), w3, b3))
    return F.log_softmax(F.linear(X, w4, b4), dim=1)


# ------------------------------------------------------------------------------------------ probes
def probe_cnn_structure(ns, weights, X_table):
    """Parameters, shapes, dropout calls per mode, log-probabilities, fixed-weight outputs, meta device."""
    import inspect
    import torch
    import torch.nn.functional as F
    Net = ns.require("Net", kind="class")
    out = {}
    torch.manual_seed(0)
    net = Net()
    out["module"] = isinstance(net, torch.nn.Module)
    if not out["module"]:
        out["type"] = type(net).__name__
        return out
    params = list(net.parameters())
    out["params"] = sum(p.numel() for p in params)
    out["shapes"] = sorted(tuple(p.shape) for p in params)

    names = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
    saved = {name: getattr(F, name) for name in names if hasattr(F, name)}
    calls = []

    def recording(name, fn):
        signature = inspect.signature(fn)

        def recorded(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            X = a.get("input")
            calls.append((name, float(a.get("p", 0.5)), bool(a.get("training", True)),
                          tuple(X.shape) if isinstance(X, torch.Tensor) else ()))
            return fn(*args, **kwargs)
        return recorded

    X = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    try:
        for name, fn in saved.items():
            setattr(F, name, recording(name, fn))
        net.eval()
        with torch.no_grad():
            calls.clear()
            out["eval_1"] = net(X)
            out["eval_calls"] = list(calls)
            out["eval_2"] = net(X)
            out["single"] = net(X[:1])
            out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(5)])
        net.train()
        with torch.no_grad():
            torch.manual_seed(2)
            calls.clear()
            out["train_1"] = net(X)
            out["train_calls"] = list(calls)
            out["train_2"] = net(X)
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)

    by_shape = {tuple(w.shape): w for w in weights}
    if sorted(by_shape) == out["shapes"]:
        torch.manual_seed(0)
        fixed = Net()
        with torch.no_grad():
            for p in fixed.parameters():
                p.copy_(by_shape[tuple(p.shape)])
            fixed.eval()
            out["table"] = fixed(X_table)
    try:
        meta = Net().to("meta")
        meta.train()
        y_hat = meta(torch.randn(3, 1, 28, 28, device="meta"))
        torch.nn.functional.nll_loss(y_hat, torch.zeros(3, dtype=torch.long, device="meta")).backward()
        out["meta"] = {"device": str(y_hat.device), "shape": tuple(y_hat.shape),
                       "grads": all(p.grad is not None and p.grad.device.type == "meta" for p in meta.parameters())}
    except Exception as exc:  # reported to the student as a device problem
        out["meta"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out


def probe_optimizer(ns):
    """make_optimizer(Net()): its class, learning rates, and whether it covers every parameter once."""
    import torch
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")
    torch.manual_seed(0)
    net = Net()
    optimizer = make_optimizer(net)
    out = {"type": type(optimizer).__name__, "is_optimizer": isinstance(optimizer, torch.optim.Optimizer),
           "adadelta": isinstance(optimizer, torch.optim.Adadelta)}
    if out["is_optimizer"]:
        ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
        out["lrs"] = [float(group["lr"]) for group in optimizer.param_groups]
        wanted = [id(p) for p in net.parameters()] if isinstance(net, torch.nn.Module) else []
        out["covers"] = sorted(ids) == sorted(wanted)
    return out


def probe_cnn_training(ns, X_train, y_train, X_heldout, batch_size, seed, mean, std):
    """One epoch of a correct loop on the student's Net and make_optimizer; held-out predictions.

    X_train: (n, 28, 28) uint8 with y_train (n,) int64; X_heldout: (m, 1, 28, 28) float32, normalised.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")

    Xtr = ((X_train.float() / 255 - mean) / std).unsqueeze(1)
    torch.manual_seed(seed)
    net = Net()
    optimizer = make_optimizer(net)
    loader = DataLoader(TensorDataset(Xtr, y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    net.train()
    for X, y in loader:
        optimizer.zero_grad()
        F.nll_loss(net(X), y).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(X_heldout[i:i + 500]).argmax(dim=1) for i in range(0, len(X_heldout), 500)])
        log_probs = net(Xtr[:1000])
        loss = float(-log_probs.gather(1, y_train[:1000].reshape(-1, 1)).mean())
    return {"pred": pred, "train_loss": loss}


def probe_train(ns, log_interval, epoch):
    """train() for one epoch of 6 batches (5 of 8 images, 1 of 4) on a recording model, from eval mode."""
    import contextlib
    import copy
    import io
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    train = ns.require("train")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(784, 10)
            self.calls = []

        def forward(self, X):
            self.calls.append((self.training, torch.is_grad_enabled(), tuple(X.shape)))
            return F.log_softmax(self.linear(X.reshape(X.shape[0], -1)), dim=1)

    gen = torch.Generator().manual_seed(4)
    X = torch.randn(44, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (44,), generator=gen)
    torch.manual_seed(0)
    net = Recorder()
    with torch.no_grad():                    # the small last batch gets the least likely labels
        y[40:] = net.linear(X[40:].reshape(4, -1)).argmin(dim=1)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    ref = copy.deepcopy(net)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses, sizes = [], []
    for a, b in loader:
        ref_opt.zero_grad()
        loss = F.nll_loss(ref(a), b)
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
        sizes.append(len(a))
    ref.calls.clear()
    net.eval()                                     # train() must switch to train mode itself
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = train(net, torch.device("cpu"), loader, torch.optim.SGD(net.parameters(), lr=0.1), epoch,
                       log_interval)
    lines = [line for line in printed.getvalue().splitlines() if line.strip()]
    number = isinstance(result, (int, float)) and not isinstance(result, bool)
    return {"calls": net.calls, "lines": lines[:20], "n_lines": len(lines),
            "result": float(result) if number or (isinstance(result, torch.Tensor) and result.numel() == 1)
            else None, "is_float": isinstance(result, float), "result_type": type(result).__name__,
            "expected_loss": sum(l * n for l, n in zip(losses, sizes)) / sum(sizes),
            "unweighted_loss": sum(losses) / len(losses),
            "params": [p.detach().clone() for p in net.parameters()],
            "ref_params": [p.detach().clone() for p in ref.parameters()]}


def probe_test(ns):
    """test() on batches of 8, 8 and 4 images with a recording model left in train mode."""
    import contextlib
    import io
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    test = ns.require("test")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(784, 10)
            self.calls = []

        def forward(self, X):
            self.calls.append((self.training, torch.is_grad_enabled(), tuple(X.shape)))
            return F.log_softmax(self.linear(X.reshape(X.shape[0], -1)), dim=1)

    torch.manual_seed(0)
    net = Recorder()
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(20, 1, 28, 28, generator=gen)
    with torch.no_grad():
        best = net.linear(X.reshape(20, -1)).argmax(dim=1)
    y = (best + 1) % 10                      # the two full batches are nearly all wrong ...
    y[0], y[9] = best[0], best[9]
    y[16:] = best[16:]                       # ... and the small last batch all right
    with torch.no_grad():
        log_probs = F.log_softmax(net.linear(X.reshape(20, -1)), dim=1)
        expected_loss = F.nll_loss(log_probs, y).item()
        expected_acc = (log_probs.argmax(dim=1) == y).float().mean().item()
        parts = (slice(0, 8), slice(8, 16), slice(16, 20))
        per_batch = [((log_probs[s].argmax(dim=1) == y[s]).float().mean().item()) for s in parts]
        per_batch_loss = [F.nll_loss(log_probs[s], y[s]).item() for s in parts]
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.train()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = test(net, torch.device("cpu"), loader)
    ok = isinstance(result, (tuple, list)) and len(result) == 2

    def number(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value)
        return None

    return {"calls": net.calls, "ok": ok, "type": type(result).__name__,
            "loss": number(result[0]) if ok else None, "acc": number(result[1]) if ok else None,
            "types": [type(v).__name__ for v in result] if ok else [],
            "floats": ok and all(isinstance(v, float) for v in result),
            "n_lines": len([line for line in printed.getvalue().splitlines() if line.strip()]),
            "expected_loss": expected_loss, "expected_acc": expected_acc,
            "unweighted_acc": sum(per_batch) / 3, "unweighted_loss": sum(per_batch_loss) / 3}


def probe_on_meta(ns, which):
    """Run ``which`` ("train", "test" or "predict_image") with the model on the meta device.

    Returns "ok" or the error's text. Meta tensors hold no values: while this runs, ``item``,
    ``float()``, ``int()`` and ``.cpu()`` of a meta tensor give zeros.
    """
    import contextlib
    import io
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    fn = ns.require(which)
    names = ("item", "__float__", "__int__", "cpu")
    saved = {name: torch.Tensor.__dict__.get(name) for name in names}
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def zero(value):
        return 0 if not (value.is_floating_point() or value.is_complex()) else 0.0

    patches = {
        "item": lambda self: zero(self) if self.is_meta else originals["item"](self),
        "__float__": lambda self: 0.0 if self.is_meta else originals["__float__"](self),
        "__int__": lambda self: 0 if self.is_meta else originals["__int__"](self),
        "cpu": lambda self, *a, **k: (torch.zeros(self.shape, dtype=self.dtype) if self.is_meta
                                      else originals["cpu"](self, *a, **k)),
    }
    gen = torch.Generator().manual_seed(9)
    X, y = torch.randn(20, 1, 28, 28, generator=gen), torch.randint(0, 10, (20,), generator=gen)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.LogSoftmax(dim=1))
    net = net.to("meta")
    device = torch.device("meta")
    try:
        for name, patch in patches.items():
            setattr(torch.Tensor, name, patch)
        with contextlib.redirect_stdout(io.StringIO()):
            if which == "train":
                fn(net, device, loader, torch.optim.SGD(net.parameters(), lr=0.1), 1, 2)
            elif which == "test":
                fn(net, device, loader)
            else:
                fn(net, X[0])
        return "ok"
    except Exception as exc:  # judged in the judging process
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, value)


def probe_predict(ns):
    """predict_image on three images with a recording model left in train mode."""
    import torch
    import torch.nn.functional as F
    predict_image = ns.require("predict_image")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(784, 10)
            self.calls = []

        def forward(self, X):
            self.calls.append((self.training, torch.is_grad_enabled(), tuple(X.shape)))
            return F.log_softmax(self.linear(X.reshape(X.shape[0], -1)), dim=1)

    torch.manual_seed(0)
    net = Recorder()
    images = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        expected = net.linear(images.reshape(3, -1)).argmax(dim=1).tolist()
    got = []
    for image in images:
        net.train()
        value = predict_image(net, image)
        exact_int = isinstance(value, int) and not isinstance(value, bool)
        got.append([type(value).__name__ if not exact_int else "int",
                    int(value) if exact_int or (isinstance(value, torch.Tensor) and value.numel() == 1) else None])
    return {"got": got, "expected": expected, "calls": net.calls}


def _device_failure(what, error, fix):
    """Fail when ``error`` (from a run with the model on another device) is a device mismatch."""
    if error != "ok" and any(text in error for text in DEVICE_ERRORS):
        fail(f"{what} does not work when the model is on another device than the CPU (a GPU): it raised "
             f"{error.splitlines()[0][:160]} {fix}")


# ----------------------------------------------------------------------------------------- mnist_cnn
@pytest.fixture(scope="module")
def cnn_structure(student):
    return student.probe(probe_cnn_structure, table_weights(), torch.randn(4, 1, 28, 28,
                         generator=torch.Generator().manual_seed(12)), label="`Net`")


def _module(out):
    expect(out["module"], f"Net() should be an nn.Module (a subclass, or an nn.Sequential), not a "
           f"{out.get('type', '?')}.")


def _dropout_off_in_eval(out):
    """Fail with the dropout message when the eval-mode outputs are not deterministic."""
    active = [c for c in out["eval_calls"] if c[2] and c[1] > 0]
    if active:
        fail(f"Dropout is still active after net.eval() ({len(active)} dropout call(s) with training=True in "
             "eval mode): use nn.Dropout modules, or F.dropout(X, p, training=self.training) (plain "
             "F.dropout(X, p) drops even when evaluating).")
    expect_tensor(out["eval_1"], "Net()(X) for X of shape (5, 1, 28, 28)", shape=(5, 10))
    expect_close(out["eval_2"], out["eval_1"], "two calls on the same batch in eval mode (dropout must be off "
                 "after net.eval(): use nn.Dropout or F.dropout(..., training=self.training))", rtol=1e-5, atol=1e-6)


@pytest.mark.mnist_cnn
def test_cnn_parameters(cnn_structure):
    out = cnn_structure
    _module(out)
    expect(out["params"] == CNN_PARAMETERS,
           f"Net has {out['params']:,} trainable parameters; the architecture described has {CNN_PARAMETERS:,}. "
           "Create every layer in __init__ (layers made inside forward are not registered, and new at "
           "every call), with the sizes of the table.")
    expect(out["shapes"] == sorted(CNN_SHAPES),
           f"Net's parameters have shapes {out['shapes']}; the table's layers have {sorted(CNN_SHAPES)} "
           "(conv1 16x1x3x3, conv2 32x16x3x3, fc1 64x4608, fc2 10x64, and their biases).")


@pytest.mark.mnist_cnn
def test_cnn_dropout_modes(cnn_structure):
    out = cnn_structure
    _module(out)
    _dropout_off_in_eval(out)
    gap = (out["train_1"].double() - out["train_2"].double()).abs().max().item()
    expect(gap > 1e-4, "Two calls on the same batch in train mode gave the same output (within 1e-4): "
           "dropout should be active after net.train().")


@pytest.mark.mnist_cnn
def test_cnn_dropout_rates(cnn_structure):
    out = cnn_structure
    _module(out)
    active = []
    for _, p, training, shape in out["train_calls"]:
        features = 1
        for s in shape[1:]:
            features *= s
        if training and p > 0:
            active.append((p, features))
    described = ", ".join(f"p={p:g} on {f} features per image" for p, f in active) or "none"
    expect(len(active) == len(CNN_DROPOUT) and all(abs(p - q) < 1e-9 and f == g
                                                   for (p, f), (q, g) in zip(active, CNN_DROPOUT)),
           "In train mode Net should apply dropout 0.25 to the pooled features (32 x 12 x 12 = 4608 per image) "
           f"and then dropout 0.5 to the output of fc1 (64 per image); it applied: {described}.")


@pytest.mark.mnist_cnn
def test_cnn_output_log_probabilities(cnn_structure):
    out = cnn_structure
    _module(out)
    y_hat = expect_tensor(out["eval_1"], "Net()(X) for X of shape (5, 1, 28, 28)", shape=(5, 10),
                          dtype=torch.float32, finite=True)
    expect_tensor(out["single"], "Net()(X) for one image of shape (1, 1, 28, 28)", shape=(1, 10))
    expect_close(y_hat.double().exp().sum(dim=1), torch.ones(5, dtype=torch.float64),
                 "exp of each output row (log-probabilities: the probabilities sum to 1)", rtol=0, atol=1e-4)
    expect(bool((y_hat <= 1e-6).all()), "Log-probabilities cannot be positive (tolerance 1e-6): end forward with "
           "F.log_softmax(X, dim=1).")


@pytest.mark.mnist_cnn
def test_cnn_computes_the_table(cnn_structure):
    out = cnn_structure
    _module(out)
    expect(out["shapes"] == sorted(CNN_SHAPES),
           f"Net's parameters have shapes {out['shapes']}; the table's layers have {sorted(CNN_SHAPES)} "
           "(conv1 16x1x3x3, conv2 32x16x3x3, fc1 64x4608, fc2 10x64, and their biases).")
    _dropout_off_in_eval(out)
    X = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(12))
    expected = table_forward(table_weights(), X)
    got = expect_tensor(out["table"], "Net()(X) for X of shape (4, 1, 28, 28)", shape=(4, 10))
    expect_close(got, expected, "Net's output in eval mode with given weights in each layer, compared with "
                 "the table (conv1 + ReLU, conv2 + ReLU, max_pool2d 2, flatten, fc1 + ReLU, fc2, log_softmax)",
                 rtol=1e-4, atol=1e-4)


@pytest.mark.mnist_cnn
def test_cnn_keeps_the_batch(cnn_structure):
    out = cnn_structure
    _module(out)
    _dropout_off_in_eval(out)
    expect_close(out["rows"], out["eval_1"], "the outputs for images one at a time compared with the whole "
                 "batch, in eval mode (flatten from dimension 1, keep the batch dimension)", rtol=1e-4, atol=1e-5)


@pytest.mark.mnist_cnn
def test_cnn_runs_on_any_device(cnn_structure):
    out = cnn_structure
    _module(out)
    meta = out["meta"]
    if "error" in meta:
        fail("Net should run forward and backward on whatever device it and the batch are on (a GPU, say), but "
             f"on another device than the CPU it raised {meta['error']}. Create layers in __init__ and no "
             "tensors on a fixed device inside forward.")
    expect(meta["device"] == "meta" and meta["shape"] == (3, 10) and meta["grads"],
           f"On another device, Net's output and gradients should stay there (output on {meta['device']}, "
           f"shape {meta['shape']}).")


@pytest.mark.mnist_cnn
def test_make_optimizer(student):
    out = student.probe(probe_optimizer, label="`make_optimizer`")
    expect(out["is_optimizer"], f"make_optimizer(net) should return a torch optimiser, not a {out['type']}.")
    expect(out["adadelta"], f"make_optimizer(net) returned {out['type']}; the lesson trains with optim.Adadelta.")
    expect(all(abs(lr - 0.5) < 1e-12 for lr in out["lrs"]),
           f"make_optimizer(net) uses learning rate(s) {out['lrs']}; the lesson's is lr=0.5.")
    expect(out["covers"], "make_optimizer(net) should optimise every parameter of net, each once: "
           "optim.Adadelta(net.parameters(), lr=0.5).")


@pytest.fixture(scope="module")
def heldout_secret():
    """One secret per grading for the disguise of the held-out images (never sent to the student)."""
    return heldout.grading_secret()


def _has_the_table_structure(out):
    """Whether Net is a module with the table's layers, dropout rates and outputs (no failure raised)."""
    if not out["module"] or out["shapes"] != sorted(CNN_SHAPES) or "table" not in out:
        return False
    if any(c[2] and c[1] > 0 for c in out["eval_calls"]):
        return False
    X = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(12))
    table = out["table"]
    return (isinstance(table, torch.Tensor) and table.shape == (4, 10)
            and torch.allclose(table.double(), table_forward(table_weights(), X).double(), rtol=1e-4, atol=1e-4))


@pytest.mark.mnist_cnn
def test_cnn_trains_to_accuracy(student, heldout_secret, cnn_structure):
    if not _has_the_table_structure(cnn_structure):
        pytest.skip("the accuracy is measured once Net has the table's structure (other checks say what differs)")
    X_train, y_train, X_test, y_test = data.mnist_test_split_tensors(2000, seed=0)
    cfg = CNN_TRAINING
    n = cfg["n_train"]
    out = student.probe(probe_cnn_training, X_train[:n], y_train[:n], heldout_inputs(X_test, heldout_secret),
                        cfg["batch_size"], grading_seed(), MNIST_MEAN, MNIST_STD, timeout=180,
                        label="training your Net")
    pred = expect_tensor(out["pred"], "the predictions for the held-out images", shape=(len(X_test),))
    acc = (pred.long() == y_test).double().mean().item()
    expect(acc >= CNN_ACCURACY_MIN,
           f"Net trained for one epoch with your make_optimizer (batch {cfg['batch_size']}, {n:,} MNIST images, "
           f"F.nll_loss) reaches {acc:.3f} accuracy on held-out images; at least {CNN_ACCURACY_MIN:.2f} is "
           "expected.")


# ------------------------------------------------------------------------------------ cnn_train_test
@pytest.fixture(scope="module")
def train_out(student):
    return student.probe(probe_train, 2, 7, label="`train`")


@pytest.mark.cnn_train_test
def test_train_mode_and_steps(train_out):
    calls = train_out["calls"]
    expect(len(calls) == 6, f"train ran the model on {len(calls)} batches; the epoch had 6.")
    expect(all(training for training, _, _ in calls),
           "train ran the model in eval mode: call net.train() at its start (test leaves the model in eval "
           "mode, and dropout must be on while training).")
    expect(all(grad for _, grad, _ in calls), "train ran the model without gradients.")
    for got, want in zip(train_out["params"], train_out["ref_params"]):
        expect_close(got, want, "the parameters after one epoch of train (one step of the optimizer it is "
                     "given per batch on F.nll_loss(net(X), y): zero_grad, backward, step)", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_logs_and_returns_loss(train_out):
    n = train_out["n_lines"]
    expect(2 <= n <= 4, f"With log_interval=2 over 6 batches, train printed {n} lines; one every "
           "log_interval batches (batch_idx % log_interval == 0) is expected.")
    expect(any("7" in line for line in train_out["lines"]),
           "train's log lines should name the epoch (train was called with epoch=7).")
    expect(train_out["result"] is not None,
           f"train should return the epoch's mean training loss as a Python float, not a "
           f"{train_out['result_type']}.")
    expect(train_out["is_float"], f"train should return the mean training loss as a Python float (sum "
           f"loss.item() values), not a {train_out['result_type']}.")
    result, weighted, unweighted = train_out["result"], train_out["expected_loss"], train_out["unweighted_loss"]
    if abs(result - unweighted) <= 1e-6 + 1e-4 * abs(unweighted) < abs(result - weighted):
        fail("train averaged the loss over batches: weight each batch's loss by its number of images and "
             "divide by the number of images, so that a small last batch does not count as much as a full one.")
    expect_close(result, weighted, "the mean training loss returned by train (each batch's loss.item() times "
                 "its number of images, summed, divided by the number of images)", rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def test_out(student):
    return student.probe(probe_test, label="`test`")


@pytest.mark.cnn_train_test
def test_test_mode_and_no_grad(test_out):
    calls = test_out["calls"]
    expect(len(calls) >= 3, f"test called the model {len(calls)} times for 3 batches.")
    expect(all(not training for training, _, _ in calls),
           "test ran the model in training mode: call net.eval() first (dropout would still drop).")
    expect(all(not grad for _, grad, _ in calls), "test ran the model with gradients enabled: use torch.no_grad().")


@pytest.mark.cnn_train_test
def test_test_averages(test_out):
    expect(test_out["ok"], f"test should return (mean loss, accuracy), not a {test_out['type']}.")
    acc, loss = test_out["acc"], test_out["loss"]
    expect(acc is not None and loss is not None,
           f"test should return two numbers (mean loss, accuracy), not {test_out['types']}.")
    if 1.0 < acc <= 100.0:
        fail(f"test returned accuracy {acc:g}: return a fraction in [0, 1], not a percentage.")
    if abs(acc - test_out["unweighted_acc"]) < 1e-6 or abs(loss - test_out["unweighted_loss"]) < 1e-6:
        fail("test averaged over batches: divide the summed loss and the number of correct predictions by "
             "the number of images, so that the small last batch does not count as much as a full one.")
    expect_close(acc, test_out["expected_acc"], "the accuracy returned by test (correct predictions / images)",
                 rtol=0, atol=1e-6)
    expect_close(loss, test_out["expected_loss"], "the mean loss returned by test (summed loss / "
                 "images)", rtol=1e-4, atol=1e-6)
    expect(test_out["floats"], f"test should return Python floats (use .item() on tensors), not "
           f"({', '.join(test_out['types'])}).")
    expect(test_out["n_lines"] >= 1, "test should print one line with the mean loss and the accuracy.")


@pytest.mark.cnn_train_test
def test_train_and_test_follow_the_device(student):
    fix = ("Move each batch with X, y = X.to(device), y.to(device): Tensor.to returns a new tensor and does "
           "not move X itself.")
    _device_failure("train", student.probe(probe_on_meta, "train", label="`train`"), fix)
    _device_failure("test", student.probe(probe_on_meta, "test", label="`test`"), fix)


# ------------------------------------------------------------------------------------- predict_image
@pytest.mark.predict_image
def test_predict_image(student):
    out = student.probe(probe_predict, label="`predict_image`")
    for (kind, value), want in zip(out["got"], out["expected"]):
        expect(kind == "int", f"predict_image should return a Python int, not a {kind}.")
        expect(value == want, f"predict_image returned {value}; the class with the highest score is {want}.")
    calls = out["calls"]
    expect(all(shape == (1, 1, 28, 28) for _, _, shape in calls),
           f"predict_image should pass a batch of one image, shape (1, 1, 28, 28), to the network; it passed "
           f"{sorted({s for _, _, s in calls})}.")
    expect(all(not training for training, _, _ in calls),
           "predict_image ran the network in training mode: call net.eval() first.")
    expect(all(not grad for _, grad, _ in calls),
           "predict_image ran the network with gradients enabled: predict inside torch.no_grad().")


@pytest.mark.predict_image
def test_predict_image_follows_the_model(student):
    _device_failure("predict_image", student.probe(probe_on_meta, "predict_image", label="`predict_image`"),
                    "Move the image to the device of the network's parameters: "
                    "image.to(next(net.parameters()).device).")
