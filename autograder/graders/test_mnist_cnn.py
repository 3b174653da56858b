"""Graders for 07-mnist-cnn: the ConvNet, its train() / test() functions, and a single prediction.

One mistake costs one task: the probes of each task call only that task's objects. ``Net`` and
``make_optimizer`` are trained by a correct loop of the grader's own (not the student's ``train``), and
``train`` / ``test`` / ``predict_image`` are checked on a small recording model, not on ``Net``.

The judge decides, from data. Probes call the student's code and return what it gives and what it did,
never a verdict, and every reference value is made here:
- ``Net``: its named parameters (the judge counts them and reads their shapes), outputs in eval and train
  mode, outputs with weights sent from here (compared with ``table_forward``), gradients on the meta device;
- ``make_optimizer``: the parameters before and after two ``step()`` calls with gradients sent from here,
  which the judge replays with ``torch.optim.Adadelta(lr=0.5)`` itself (a different optimiser, learning rate
  or set of parameters gives different values);
- ``train`` / ``test`` / ``predict_image``: the recording model is BatchNorm2d(1), Linear(784, 10) and
  log_softmax, whose outputs and running statistics depend on the mode; its state and the data are sent from
  here, and the judge replays a correct run on a copy of its own (train mode, one SGD step per batch; eval
  mode without gradients) and compares the state, losses and predictions the student's functions leave.
  Gradients enabled show as the graph roots (``grad_fn``) of the model's outputs.

Devices. ``train``, ``test`` and ``predict_image`` are also run with the model on PyTorch's ``meta``
device (a device with shapes but no data, so no GPU is needed): a batch left on the CPU raises "Tensor
on device cpu is not on the expected device meta!", as it would on a GPU. Meta tensors hold no values,
so during that run ``Tensor.item``, ``float()``, ``int()`` and ``.cpu()`` of a meta tensor read zeros;
an error other than a device mismatch on meta (e.g. ``.numpy()`` of a meta tensor) is not held against
the student (the CPU checks of the same task judge the values).

Dropout. The structure probe records the input and output of every call of ``F.dropout`` /
``F.dropout2d`` (what ``nn.Dropout`` and ``nn.Dropout2d`` call too) during one forward pass in each mode.
The judge counts a call as active when it changed its input, reads its rate from the values it kept
(dropout with rate p keeps x as x / (1 - p)) and its features per image from the input's shape.
``Dropout2d`` where the table says dropout is accepted (the published example does this, warning and all),
and so are the published example's rates (Mastering PyTorch, ch. 1: 0.10 after pooling, 0.25 after fc1)
besides the lesson's 0.25 and 0.5.

Edges (round 3): ``train`` is called with epoch 19, a number none of its printed counts or percentages holds
(with epoch 7 the published example's "67%" passed for the epoch), and once more on 41 images (a last batch of
one image) with log_interval 100, beyond the epoch, where batch 0 must still print; ``test`` also runs on 17
images (a last batch of one); ``Net``'s output in eval mode must stay finite for images scaled by 1e4, where
log(softmax(...)) gives -inf.

Accuracy (task mnist_cnn). The judge loads the MNIST test split (course.data), splits it with seed 0
into 8,000 training and 2,000 held-out images, normalises the held-out images and changes them by a
secret drawn for each grading (``autograder.judge.heldout.disguise`` with HELDOUT_DISGUISE: Gaussian noise of
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
  Mastering PyTorch ch. 1 as printed (Dropout2d 0.10 and 0.25, Adadelta lr 0.5; a correct variant, 20 seeds,
                            the training probe run on tests/test_mnist_cnn.py's MASTERING_PYTORCH_CH1):
                            min 0.9045, median 0.9365, max 0.9485
  dropout without training=self.training (predictions with dropout on; the closest wrong variant,
                            20 seeds): min 0.8280, median 0.8575, max 0.8900, so accuracy alone does not
                            separate it on every seed; the dropout checks of the same task do
  Adadelta lr 0.05, a tenth of the lesson's (5 seeds): min 0.8190, median 0.8235, max 0.8510
  The same held-out images without the disguise: seed 0 0.9345 (with it 0.9360); with a shift of up to
  one pixel as well (heldout's defaults) seed 0 fell to 0.866-0.874, hence HELDOUT_DISGUISE.
Threshold: accuracy >= 0.87 (0.037 below the reference minimum; 0.0345 below the lowest correct variant).
A run (training and predicting) took a median 24.6 s in the calibration, on 2 cores shared with many
other jobs (load average 9-16).
"""

import os

import pytest
import torch

from autograder.judge import heldout
from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.tasks import Task
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
# (rate, features per image it acts on), in order: the lesson's rates, and those of the published example
# (Mastering PyTorch, ch. 1: Dropout2d(0.10) after pooling, Dropout2d(0.25) after fc1)
CNN_DROPOUT_SCHEDULES = [[(0.25, 4608), (0.5, 64)], [(0.10, 4608), (0.25, 64)]]
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
        "train: the printed line names the epoch it is given (epoch 19: a number none of the printed counts "
        "holds)": "test_train_logs_and_returns_loss",
        "train: log_interval larger than the epoch: the first batch (batch_idx 0) still prints": "test_train_edges",
        "train: a last batch of one image (41 images in batches of 8) is trained and weighted like the others":
            "test_train_edges",
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
        "test: a last batch of one image (17 images in batches of 8) counts like the others":
            "test_test_last_batch_of_one",
        "test: prints one line": "test_test_averages",
    },
    "mnist_cnn": {
        "Net is an nn.Module (a subclass, or an nn.Sequential) built with no arguments": "test_cnn_parameters",
        "every layer with parameters is created in __init__ (300,426 parameters)": "test_cnn_parameters",
        "conv1 Conv2d(1, 16, kernel_size=3, stride=1), conv2 Conv2d(16, 32, 3, 1), fc1 Linear(4608, 64), "
        "fc2 Linear(64, 10)": ["test_cnn_parameters", "test_cnn_computes_the_table"],
        "ReLU after conv1, conv2 and fc1; max_pool2d(2) after conv2; flatten from dim 1 in channel order":
            "test_cnn_computes_the_table",
        "dropout 0.25 on the pooled features and 0.5 on the fc1 output, active in train() mode (the published "
        "example's 0.1 and 0.25 accepted too)": "test_cnn_dropout_rates",
        "dropout off in eval() mode": "test_cnn_dropout_modes",
        "output (N, 10) log-probabilities (log_softmax over dim 1)": "test_cnn_output_log_probabilities",
        "the log-probabilities stay finite when the scores lie thousands apart (log_softmax, not log(softmax))":
            "test_cnn_log_probabilities_stay_finite",
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
def probe_cnn_structure(ns, weights, X_table, X, large):
    """Net(): its named parameters, every dropout call's input and output in one forward pass per mode,
    outputs in eval and train mode, outputs with the judge's fixed weights (also for X_table scaled by
    ``large``, where the scores lie far apart), and a forward and backward pass
    on the meta device (its output and the parameters' gradients as meta tensors)."""
    import torch
    import torch.nn.functional as F
    Net = ns.require("Net", kind="class")
    torch.manual_seed(0)
    net = Net()
    out = {"type": type(net).__name__}
    try:
        named = list(net.named_parameters())
    except AttributeError as exc:            # judged in the judging process
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    out["named"] = [(name, p.detach().clone()) for name, p in named]

    names = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
    saved = {name: getattr(F, name) for name in names if hasattr(F, name)}
    calls = []

    def recording(name, fn):
        def recorded(*args, **kwargs):
            input = args[0] if args else kwargs.get("input")
            before = input.detach().clone() if isinstance(input, torch.Tensor) else None
            result = fn(*args, **kwargs)
            calls.append((name, before, result.detach().clone() if isinstance(result, torch.Tensor) else None))
            return result
        return recorded

    try:
        for name, fn in saved.items():
            setattr(F, name, recording(name, fn))
        net.eval()
        with torch.no_grad():
            calls.clear()
            out["eval_1"] = net(X)
            out["eval_drops"] = list(calls)
            out["eval_2"] = net(X)
            out["single"] = net(X[:1])
            out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(len(X))])
        net.train()
        with torch.no_grad():
            torch.manual_seed(2)
            calls.clear()
            out["train_1"] = net(X)
            out["train_drops"] = list(calls)
            out["train_2"] = net(X)
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)

    by_shape = {tuple(w.shape): w for w in weights}
    torch.manual_seed(0)
    fixed = Net()
    with torch.no_grad():
        for p in fixed.parameters():
            if tuple(p.shape) in by_shape:
                p.copy_(by_shape[tuple(p.shape)])
        fixed.eval()
        out["table"] = fixed(X_table)
        out["table_large"] = fixed(X_table * large)
    try:
        meta = Net().to("meta")
        meta.train()
        y_hat = meta(torch.randn(3, 1, 28, 28, device="meta"))
        torch.nn.functional.nll_loss(y_hat, torch.zeros(3, dtype=torch.long, device="meta")).backward()
        out["meta"] = {"output": y_hat.detach(),
                       "grads": [p.grad.detach() if p.grad is not None else None for p in meta.parameters()]}
    except Exception as exc:  # reported to the student as a device problem
        out["meta"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out


def probe_optimizer(ns, steps):
    """make_optimizer(Net()): its type's name and learning rates, and Net's named parameters before and after
    each of its step() calls, with the judge's gradients (``steps``: one {name: gradient} per step) put in
    each parameter's .grad before the step."""
    import torch
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")
    torch.manual_seed(0)
    net = Net()
    optimizer = make_optimizer(net)
    groups = getattr(optimizer, "param_groups", None)
    out = {"type": type(optimizer).__name__, "lrs": None, "after": []}
    if isinstance(groups, list):
        out["lrs"] = [float(group["lr"]) if isinstance(group.get("lr"), (int, float)) else repr(group.get("lr"))
                      for group in groups if isinstance(group, dict)]
    params = dict(net.named_parameters())
    out["before"] = {name: p.detach().clone() for name, p in params.items()}
    try:
        for grads in steps:
            for name, p in params.items():
                p.grad = grads[name].clone() if name in grads else None
            optimizer.step()
            out["after"].append({name: p.detach().clone() for name, p in params.items()})
    except Exception as exc:                 # judged in the judging process
        out["step_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
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


def probe_train(ns, state, X, y, log_interval, epoch):
    """train() for one epoch of the judge's X, y (batches of 8, last one smaller, not shuffled) on a small
    recording model in eval mode, with SGD(lr=0.1). Returns the input shapes and graph roots of its forward
    calls, what it printed, what it returned, and the model's state (parameters and running statistics)."""
    import contextlib
    import io
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    train = ns.require("train")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(1)
            self.linear = torch.nn.Linear(784, 10)
            self.shapes, self.graphs = [], []

        def forward(self, X):
            self.shapes.append(tuple(X.shape))
            out = F.log_softmax(self.linear(self.norm(X.reshape(-1, 1, 28, 28)).reshape(-1, 784)), dim=1)
            self.graphs.append(type(out.grad_fn).__name__ if out.grad_fn is not None else None)
            return out

    def plain(value):
        kept = value if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool) else None
        return {"type": type(value).__name__, "value": kept.detach() if isinstance(kept, torch.Tensor) else kept}

    net = Recorder()
    net.load_state_dict(state)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.eval()                                     # train() must switch to train mode itself
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = train(net, torch.device("cpu"), loader, torch.optim.SGD(net.parameters(), lr=0.1), epoch,
                       log_interval)
    lines = [line for line in printed.getvalue().splitlines() if line.strip()]
    return {"shapes": net.shapes, "graphs": net.graphs, "lines": lines[:20], "n_lines": len(lines),
            "result": plain(result), "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def probe_test(ns, state, X, y):
    """test() on the judge's X, y in batches of 8 (the last smaller) with a small recording model left in
    train mode. Returns the input shapes and graph roots of its forward calls, the number of lines printed,
    what it returned, and the model's state afterwards (parameters and running statistics)."""
    import contextlib
    import io
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    test = ns.require("test")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(1)
            self.linear = torch.nn.Linear(784, 10)
            self.shapes, self.graphs = [], []

        def forward(self, X):
            self.shapes.append(tuple(X.shape))
            out = F.log_softmax(self.linear(self.norm(X.reshape(-1, 1, 28, 28)).reshape(-1, 784)), dim=1)
            self.graphs.append(type(out.grad_fn).__name__ if out.grad_fn is not None else None)
            return out

    def plain(value):
        kept = value if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool) else None
        return {"type": type(value).__name__, "value": kept.detach() if isinstance(kept, torch.Tensor) else kept}

    net = Recorder()
    net.load_state_dict(state)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.train()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = test(net, torch.device("cpu"), loader)
    returned = {"type": type(result).__name__, "items": None}
    if isinstance(result, (tuple, list)):
        returned["items"] = [plain(value) for value in result]
    return {"shapes": net.shapes, "graphs": net.graphs, "result": returned,
            "n_lines": len([line for line in printed.getvalue().splitlines() if line.strip()]),
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def probe_on_meta(ns, which):
    """Run ``which`` ("train", "test" or "predict_image") with the model on the meta device.

    Returns None, or the error's text. Meta tensors hold no values: while this runs, ``item``,
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
        return None
    except Exception as exc:  # judged in the judging process
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, value)


def probe_predict(ns, state, images):
    """predict_image on each of the judge's images with a small recording model put in train mode before each
    call. Returns what it returned, the input shapes and graph roots of the model's forward calls, and the
    model's state afterwards (parameters and running statistics)."""
    import torch
    import torch.nn.functional as F
    predict_image = ns.require("predict_image")

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(1)
            self.linear = torch.nn.Linear(784, 10)
            self.shapes, self.graphs = [], []

        def forward(self, X):
            self.shapes.append(tuple(X.shape))
            out = F.log_softmax(self.linear(self.norm(X.reshape(-1, 1, 28, 28)).reshape(-1, 784)), dim=1)
            self.graphs.append(type(out.grad_fn).__name__ if out.grad_fn is not None else None)
            return out

    def plain(value):
        kept = value if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool) else None
        return {"type": type(value).__name__, "value": kept.detach() if isinstance(kept, torch.Tensor) else kept}

    net = Recorder()
    net.load_state_dict(state)
    got = []
    for image in images:
        net.train()
        got.append(plain(predict_image(net, image)))
    return {"got": got, "shapes": net.shapes, "graphs": net.graphs,
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def _device_failure(what, error, fix):
    """Fail when ``error`` (from a run with the model on another device) is a device mismatch."""
    if error is not None and any(text in error for text in DEVICE_ERRORS):
        fail(f"{what} does not work when the model is on another device than the CPU (a GPU): it raised "
             f"{error.splitlines()[0][:160]} {fix}")


# ----------------------------------------------------------------------------------------- mnist_cnn
STRUCTURE_X = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
TABLE_X = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(12))
LARGE_INPUT = 1e4          # TABLE_X scaled by this: scores thousands apart, where softmax underflows to 0


@pytest.fixture(scope="module")
def cnn_structure(student):
    return student.probe(probe_cnn_structure, table_weights(), TABLE_X, STRUCTURE_X, LARGE_INPUT, label="`Net`")


def _module(out):
    """The named parameters of Net(), after checking that it has them (as an nn.Module does)."""
    if "error" in out:
        fail(f"Net() should be an nn.Module (a subclass, or an nn.Sequential), not a {out['type']}: its "
             f"parameters cannot be listed ({out['error']}).")
    return out["named"]


def _shapes(out):
    return sorted(tuple(t.shape) for _, t in out["named"])


def _dropout_effects(calls):
    """[(rate, features per image)] of the dropout calls that changed their input. The rate is read from the
    values kept: dropout with rate p keeps a value x as x / (1 - p)."""
    effects = []
    for _, before, after in calls:
        if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor):
            continue
        if before.shape == after.shape and torch.equal(before, after):
            continue
        features = 1
        for size in before.shape[1:]:
            features *= size
        if before.shape != after.shape:
            effects.append((float("nan"), features))
            continue
        kept = (before.abs() > 1e-6) & (after != 0)
        scale = (after[kept].double() / before[kept].double()).median().item() if kept.any() else float("inf")
        effects.append((1 - 1 / scale if scale != 0 else float("nan"), features))
    return effects


def _dropout_off_in_eval(out):
    """Fail with the dropout message when dropout changes values in eval mode or the outputs differ."""
    active = _dropout_effects(out["eval_drops"])
    if active:
        fail(f"Dropout is still active after net.eval() ({len(active)} dropout call(s) changed their input in "
             "eval mode): use nn.Dropout modules, or F.dropout(X, p, training=self.training) (plain "
             "F.dropout(X, p) drops even when evaluating).")
    expect_tensor(out["eval_1"], "Net()(X) for X of shape (5, 1, 28, 28)", shape=(5, 10))
    gap = (out["eval_2"].double() - out["eval_1"].double()).abs().max().item()
    if gap > 1e-6 + 1e-5 * out["eval_1"].double().abs().max().item():
        fail(f"Dropout is still active after net.eval(): two calls on the same batch in eval mode gave outputs "
             f"that differ by {gap:.3g} (tolerance 1e-6 + 1e-5 of the largest output): dropout must be off after "
             "net.eval() (use nn.Dropout, or F.dropout(..., training=self.training)).")


@pytest.mark.mnist_cnn
def test_cnn_parameters(cnn_structure):
    out = cnn_structure
    named = _module(out)
    params = sum(t.numel() for _, t in named)
    expect(params == CNN_PARAMETERS,
           f"Net has {params:,} trainable parameters; the architecture described has {CNN_PARAMETERS:,}. "
           "Create every layer in __init__ (layers made inside forward are not registered, and new at "
           "every call), with the sizes of the table.")
    expect(_shapes(out) == sorted(CNN_SHAPES),
           f"Net's parameters have shapes {_shapes(out)}; the table's layers have {sorted(CNN_SHAPES)} "
           "(conv1 16x1x3x3, conv2 32x16x3x3, fc1 64x4608, fc2 10x64, and their biases).")


@pytest.mark.mnist_cnn
def test_cnn_dropout_modes(cnn_structure):
    out = cnn_structure
    _module(out)
    _dropout_off_in_eval(out)
    gap = (out["train_1"].double() - out["train_2"].double()).abs().max().item()
    expect(gap > 1e-4, "Two calls on the same batch in train mode gave the same output (within 1e-4): "
           "dropout should be active after net.train().")


def _rates_match(active, schedule):
    return len(active) == len(schedule) and all(abs(p - q) <= 1e-3 and f == g
                                                for (p, f), (q, g) in zip(active, schedule))


@pytest.mark.mnist_cnn
def test_cnn_dropout_rates(cnn_structure):
    out = cnn_structure
    _module(out)
    active = _dropout_effects(out["train_drops"])
    described = ", ".join(f"p={p:.3g} on {f} features per image" for p, f in active) or "none"
    expect(any(_rates_match(active, schedule) for schedule in CNN_DROPOUT_SCHEDULES),
           "In train mode Net should apply dropout 0.25 to the pooled features (32 x 12 x 12 = 4608 per image) "
           "and then dropout 0.5 to the output of fc1 (64 per image) (the published example's 0.1 and 0.25 are "
           f"accepted too); it applied: {described} (each rate read from the values it keeps, x / (1 - p), "
           "within 0.001).")


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
    expect(_shapes(out) == sorted(CNN_SHAPES),
           f"Net's parameters have shapes {_shapes(out)}; the table's layers have {sorted(CNN_SHAPES)} "
           "(conv1 16x1x3x3, conv2 32x16x3x3, fc1 64x4608, fc2 10x64, and their biases).")
    _dropout_off_in_eval(out)
    expected = table_forward(table_weights(), TABLE_X)
    got = expect_tensor(out["table"], "Net()(X) for X of shape (4, 1, 28, 28)", shape=(4, 10))
    expect_close(got, expected, "Net's output in eval mode with given weights in each layer, compared with "
                 "the table (conv1 + ReLU, conv2 + ReLU, max_pool2d 2, flatten, fc1 + ReLU, fc2, log_softmax)",
                 rtol=1e-4, atol=1e-4)


@pytest.mark.mnist_cnn
def test_cnn_log_probabilities_stay_finite(cnn_structure):
    out = cnn_structure
    _module(out)
    if "table_large" not in out:
        return                           # Net's parameters are judged by the other checks
    large = expect_tensor(out["table_large"], f"Net's output in eval mode for images scaled by {LARGE_INPUT:g}",
                          shape=(4, 10))
    expect(bool(torch.isfinite(large).all()),
           f"Net's output in eval mode for images scaled by {LARGE_INPUT:g} (scores thousands apart) holds -inf "
           "or NaN: log(softmax(...)) underflows to log(0) there. End forward with F.log_softmax(X, dim=1), "
           "which computes the same values stably.")


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
    y_hat, grads = meta["output"], meta["grads"]
    where = (f"on {y_hat.device.type}, shape {tuple(y_hat.shape)}" if isinstance(y_hat, torch.Tensor)
             else f"a {type(y_hat).__name__}")
    expect(isinstance(y_hat, torch.Tensor) and y_hat.device.type == "meta" and tuple(y_hat.shape) == (3, 10),
           f"On another device, Net's output should stay there, of shape (3, 10) for 3 images (it is {where}).")
    missing = sum(1 for g in grads if not isinstance(g, torch.Tensor) or g.device.type != "meta")
    expect(missing == 0, f"On another device, backward should give every parameter a gradient there; "
                         f"{missing} of {len(grads)} parameters got none on that device.")


ADADELTA = {"lr": 0.5, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0}


def _optimizer_steps(named, steps=2, seed=21):
    """Gradients for two steps, {name: tensor} each, of magnitudes from 1e-3 to 10 (where Adadelta's eps and
    rho show), made here for the parameters of the student's Net."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        grads = {}
        for name, tensor in named:
            magnitude = 10 ** (torch.rand(tensor.shape, generator=gen) * 4 - 3)
            grads[name] = torch.randn(tensor.shape, generator=gen) * magnitude
        out.append(grads)
    return out


def _adadelta_replay(before, steps):
    """The parameters after each step of torch.optim.Adadelta(lr=0.5) from ``before`` with ``steps``."""
    params = {name: value.detach().clone().requires_grad_(True) for name, value in before.items()}
    optimizer = torch.optim.Adadelta(list(params.values()), **ADADELTA)
    afters = []
    for grads in steps:
        for name, p in params.items():
            p.grad = grads[name].clone() if name in grads else None
        optimizer.step()
        afters.append({name: p.detach().clone() for name, p in params.items()})
    return afters


@pytest.mark.mnist_cnn
def test_make_optimizer(student, cnn_structure):
    named = _module(cnn_structure)
    steps = _optimizer_steps(named)
    out = student.probe(probe_optimizer, steps, label="`make_optimizer`")
    if "step_error" in out:
        fail(f"make_optimizer(net) should return a torch optimiser, optim.Adadelta(net.parameters(), lr=0.5); "
             f"its step() (a {out['type']}) raised {out['step_error']}.")
    before = out["before"]
    expect(sorted(before) == sorted(name for name, _ in named),
           "make_optimizer(net): Net() built twice should have the same parameters.")
    replay = _adadelta_replay(before, steps)
    worst = 0.0
    for got, want in zip(out["after"], replay):
        for name, value in want.items():
            step = got.get(name)
            if not isinstance(step, torch.Tensor) or step.shape != value.shape:
                worst = float("inf")
                continue
            excess = ((step.double() - value.double()).abs() - 1e-5 * value.double().abs()).max().item()
            worst = max(worst, excess)
    if worst <= 1e-7 and len(out["after"]) == len(replay):
        return
    if out["type"] != "Adadelta":
        fail(f"make_optimizer(net) returned {out['type']}; the lesson trains with optim.Adadelta (its steps "
             f"differ from Adadelta's).")
    last = out["after"][-1] if out["after"] else {}
    unchanged = [name for name, value in before.items()
                 if isinstance(last.get(name), torch.Tensor) and torch.equal(last[name], value)]
    expect(not unchanged, f"make_optimizer(net) should optimise every parameter of net, each once: "
                          f"optim.Adadelta(net.parameters(), lr=0.5). Its steps left {', '.join(unchanged)} "
                          f"unchanged.")
    lrs = out["lrs"] or []
    expect(all(isinstance(lr, float) and abs(lr - 0.5) < 1e-12 for lr in lrs),
           f"make_optimizer(net) uses learning rate(s) {lrs}; the lesson's is lr=0.5.")
    fail("make_optimizer(net)'s steps differ from those of optim.Adadelta(net.parameters(), lr=0.5) with its "
         "other settings left at their defaults (rho=0.9, eps=1e-6, no weight decay), beyond a tolerance of "
         "1e-7 + 1e-5 times each parameter.")


@pytest.fixture(scope="module")
def heldout_secret():
    """One secret per grading for the disguise of the held-out images (never sent to the student)."""
    return heldout.grading_secret()


def _has_the_table_structure(out):
    """Whether Net is a module with the table's layers, dropout off in eval mode and outputs (no failure raised)."""
    if "error" in out or _shapes(out) != sorted(CNN_SHAPES) or "table" not in out:
        return False
    if _dropout_effects(out["eval_drops"]):
        return False
    table = out["table"]
    return (isinstance(table, torch.Tensor) and table.shape == (4, 10)
            and torch.allclose(table.double(), table_forward(table_weights(), TABLE_X).double(),
                               rtol=1e-4, atol=1e-4))


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
# train, test and predict_image are run on a small recording model made of BatchNorm2d(1) (whose output and
# running statistics depend on the mode), a Linear(784, 10) and log_softmax; the judge sends its state and
# replays what the functions should do with a copy of its own.
def recorder_state(seed, running_mean=0.5, running_var=4.0):
    """The recording model's state dict (parameters and running statistics), made here."""
    gen = torch.Generator().manual_seed(seed)
    return {"norm.weight": torch.tensor([1.3]), "norm.bias": torch.tensor([0.2]),
            "norm.running_mean": torch.tensor([running_mean]), "norm.running_var": torch.tensor([running_var]),
            "norm.num_batches_tracked": torch.tensor(0),
            "linear.weight": torch.randn(10, 784, generator=gen) / 28,
            "linear.bias": torch.randn(10, generator=gen) / 10}


class _Recorder(torch.nn.Module):
    """The judge's copy of the recording model (the same computation as the probes' Recorder)."""

    def __init__(self, state):
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(1)
        self.linear = torch.nn.Linear(784, 10)
        self.load_state_dict(state)

    def forward(self, X):
        import torch.nn.functional as F
        return F.log_softmax(self.linear(self.norm(X.reshape(-1, 1, 28, 28)).reshape(-1, 784)), dim=1)


def _number(item):
    """A returned value (``plain`` in the probes) as a float, or None when it is not a number."""
    value = item["value"]
    if isinstance(value, torch.Tensor):
        return float(value.double()) if value.numel() == 1 else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


TRAIN_STATE = recorder_state(40)


def _train_data():
    """44 images in batches of 8, 8, 8, 8, 8, 4; the small last batch gets the labels the model finds least
    likely, so that a mean over batches differs from the mean over images."""
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(44, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (44,), generator=gen)
    with torch.no_grad():
        y[40:] = _Recorder(TRAIN_STATE).eval()(X[40:]).argmin(dim=1)
    return X, y


def _train_replay(X, y):
    """The state after one epoch of a correct train() (train mode, SGD lr 0.1), and the batch losses and sizes."""
    import torch.nn.functional as F
    net = _Recorder(TRAIN_STATE)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    losses, sizes = [], []
    for start in range(0, len(X), 8):
        xb, yb = X[start:start + 8], y[start:start + 8]
        optimizer.zero_grad()
        loss = F.nll_loss(net(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(xb))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, losses, sizes


TRAIN_EPOCHS = (19, 52)     # the epochs train is called with: 19 is none of the counts and percentages it prints


def _names_epoch(lines, epoch):
    """Whether a printed line holds ``epoch`` as a number of its own (zero-padding allowed)."""
    import re
    return any(re.search(rf"(?<![\d.])0*{epoch}(?![\d])", line) for line in lines)


@pytest.fixture(scope="module")
def train_out(student):
    X, y = _train_data()
    out = student.probe(probe_train, TRAIN_STATE, X, y, 2, TRAIN_EPOCHS[0], label="`train`")
    out["replay"] = _train_replay(X, y)
    return out


@pytest.fixture(scope="module")
def train_out_edges(student):
    """train on 41 images (batches of 8, the last of one image) with log_interval=100, beyond the epoch."""
    X, y = _train_data()
    out = student.probe(probe_train, TRAIN_STATE, X[:41], y[:41], 100, TRAIN_EPOCHS[1],
                        label=f"`train` with log_interval=100 and epoch={TRAIN_EPOCHS[1]} on 41 images in batches "
                              "of 8 (X of shape (1, 1, 28, 28) last)")
    out["replay"] = _train_replay(X[:41], y[:41])
    return out


@pytest.mark.cnn_train_test
def test_train_mode_and_steps(train_out):
    shapes = train_out["shapes"]
    expect(len(shapes) == 6, f"train ran the model on {len(shapes)} batches; the epoch had 6.")
    state = train_out["state"]
    expect(not torch.equal(state["norm.running_mean"], TRAIN_STATE["norm.running_mean"]),
           "train ran the model in eval mode: call net.train() at its start (test leaves the model in eval "
           "mode, and dropout must be on while training).")
    expect(any(graph is not None for graph in train_out["graphs"]), "train ran the model without gradients.")
    want, _, _ = train_out["replay"]
    for name, value in want.items():
        if name.startswith("linear.") or name in ("norm.weight", "norm.bias"):
            expect_close(state[name], value, "the parameters after one epoch of train (one step of the optimizer "
                         "it is given per batch on F.nll_loss(net(X), y): zero_grad, backward, step)",
                         rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_logs_and_returns_loss(train_out):
    n = train_out["n_lines"]
    expect(2 <= n <= 4, f"With log_interval=2 over 6 batches, train printed {n} lines; one every "
           "log_interval batches (batch_idx % log_interval == 0) is expected.")
    expect(_names_epoch(train_out["lines"], TRAIN_EPOCHS[0]),
           f"train's log lines should name the epoch it is given (it was called with epoch={TRAIN_EPOCHS[0]}; "
           "no printed line holds that number).")
    returned = train_out["result"]
    result = _number(returned)
    expect(result is not None,
           f"train should return the epoch's mean training loss as a Python float, not a {returned['type']}.")
    expect(isinstance(returned["value"], float), f"train should return the mean training loss as a Python float "
           f"(sum loss.item() values), not a {returned['type']}.")
    _, losses, sizes = train_out["replay"]
    weighted = sum(l * s for l, s in zip(losses, sizes)) / sum(sizes)
    unweighted = sum(losses) / len(losses)
    if abs(result - unweighted) <= 1e-6 + 1e-4 * abs(unweighted) < abs(result - weighted):
        fail("train averaged the loss over batches: weight each batch's loss by its number of images and "
             "divide by the number of images, so that a small last batch does not count as much as a full one.")
    expect_close(result, weighted, "the mean training loss returned by train (each batch's loss.item() times "
                 "its number of images, summed, divided by the number of images)", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_edges(train_out_edges):
    out = train_out_edges
    expect(len(out["shapes"]) == 6, f"train ran the model on {len(out['shapes'])} batches; 41 images in batches "
           "of 8 are 6 batches, the last of one image.")
    expect(out["n_lines"] >= 1,
           "With log_interval=100 and an epoch of 6 batches, train printed nothing; the first batch (batch_idx 0, "
           "and 0 % log_interval == 0) should print its line.")
    state, (want, losses, sizes) = out["state"], out["replay"]
    for name, value in want.items():
        if name.startswith("linear.") or name in ("norm.weight", "norm.bias"):
            expect_close(state[name], value, "the parameters after one epoch of train on 41 images (the last batch "
                         "holds one image: keep its batch dimension, no squeeze)", rtol=1e-4, atol=1e-6)
    result = _number(out["result"])
    expect(result is not None, f"train should return the epoch's mean training loss as a Python float, not a "
           f"{out['result']['type']}.")
    expect_close(result, sum(l * s for l, s in zip(losses, sizes)) / sum(sizes), "the mean training loss returned "
                 "by train for 41 images (batches of 8, the last of one image; weighted by batch size)",
                 rtol=1e-4, atol=1e-6)


TEST_STATE = recorder_state(60)


def _test_data():
    """20 images in batches of 8, 8, 4: the two full batches nearly all wrong, the small last batch all right
    (for the model in eval mode); and the expected (loss, accuracy), over images and over batches."""
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(20, 1, 28, 28, generator=gen)
    with torch.no_grad():
        log_probs = _Recorder(TEST_STATE).eval()(X)
    best = log_probs.argmax(dim=1)
    y = (best + 1) % 10
    y[0], y[9] = best[0], best[9]
    y[16:] = best[16:]
    parts = (slice(0, 8), slice(8, 16), slice(16, 20))
    expected = {"loss": F.nll_loss(log_probs, y).item(), "acc": (best == y).double().mean().item(),
                "batch_loss": sum(F.nll_loss(log_probs[s], y[s]).item() for s in parts) / 3,
                "batch_acc": sum((best[s] == y[s]).double().mean().item() for s in parts) / 3}
    return X, y, expected


@pytest.fixture(scope="module")
def test_out(student):
    X, y, expected = _test_data()
    out = student.probe(probe_test, TEST_STATE, X, y, label="`test`")
    out["expected"] = expected
    return out


@pytest.fixture(scope="module")
def test_out_single_last(student):
    """test on the first 17 of those images: batches of 8, 8 and one image."""
    import torch.nn.functional as F
    X, y, _ = _test_data()
    X, y = X[:17], y[:17]
    with torch.no_grad():
        log_probs = _Recorder(TEST_STATE).eval()(X)
    out = student.probe(probe_test, TEST_STATE, X, y,
                        label="`test` on 17 images in batches of 8, 8 and 1 (X of shape (1, 1, 28, 28) last)")
    out["expected"] = {"loss": F.nll_loss(log_probs, y).item(),
                       "acc": (log_probs.argmax(dim=1) == y).double().mean().item()}
    return out


@pytest.mark.cnn_train_test
def test_test_last_batch_of_one(test_out_single_last):
    returned = test_out_single_last["result"]
    items = returned["items"]
    expect(items is not None and len(items) == 2 and None not in (_number(items[0]), _number(items[1])),
           "test should return (mean loss, accuracy) as two numbers (see the other message).")
    loss, acc = _number(items[0]), _number(items[1])
    expected = test_out_single_last["expected"]
    what = "17 images in batches of 8, 8 and 1 (keep the batch dimension of the last batch: no squeeze)"
    expect_close(acc, expected["acc"], f"the accuracy returned by test for {what}", rtol=0, atol=1e-6)
    expect_close(loss, expected["loss"], f"the mean loss returned by test for {what}", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_test_mode_and_no_grad(test_out):
    shapes = test_out["shapes"]
    expect(len(shapes) >= 3, f"test called the model {len(shapes)} times for 3 batches.")
    state = test_out["state"]
    expect(torch.equal(state["norm.running_mean"], TEST_STATE["norm.running_mean"])
           and torch.equal(state["norm.running_var"], TEST_STATE["norm.running_var"]),
           "test ran the model in training mode: call net.eval() first (dropout would still drop).")
    expect(all(graph is None for graph in test_out["graphs"]),
           "test ran the model with gradients enabled: use torch.no_grad().")


@pytest.mark.cnn_train_test
def test_test_averages(test_out):
    returned = test_out["result"]
    items = returned["items"]
    expect(items is not None and len(items) == 2,
           f"test should return (mean loss, accuracy), not a {returned['type']}"
           f"{' of ' + str(len(items)) + ' values' if items is not None else ''}.")
    loss, acc = _number(items[0]), _number(items[1])
    types = [item["type"] for item in items]
    expect(acc is not None and loss is not None,
           f"test should return two numbers (mean loss, accuracy), not {types}.")
    expected = test_out["expected"]
    if 1.0 < acc <= 100.0:
        fail(f"test returned accuracy {acc:g}: return a fraction in [0, 1], not a percentage.")
    if abs(acc - expected["batch_acc"]) < 1e-6 or abs(loss - expected["batch_loss"]) < 1e-6:
        fail("test averaged over batches: divide the summed loss and the number of correct predictions by "
             "the number of images, so that the small last batch does not count as much as a full one.")
    expect_close(acc, expected["acc"], "the accuracy returned by test (correct predictions / images)",
                 rtol=0, atol=1e-6)
    expect_close(loss, expected["loss"], "the mean loss returned by test (summed loss / "
                 "images)", rtol=1e-4, atol=1e-6)
    expect(all(isinstance(item["value"], float) for item in items),
           f"test should return Python floats (use .item() on tensors), not ({', '.join(types)}).")
    expect(test_out["n_lines"] >= 1, "test should print one line with the mean loss and the accuracy.")


@pytest.mark.cnn_train_test
def test_train_and_test_follow_the_device(student):
    fix = ("Move each batch with X, y = X.to(device), y.to(device): Tensor.to returns a new tensor and does "
           "not move X itself.")
    _device_failure("train", student.probe(probe_on_meta, "train", label="`train`"), fix)
    _device_failure("test", student.probe(probe_on_meta, "test", label="`test`"), fix)


# ------------------------------------------------------------------------------------- predict_image
PREDICT_STATE = recorder_state(80)
PREDICT_IMAGES = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(8))


@pytest.mark.predict_image
def test_predict_image(student):
    out = student.probe(probe_predict, PREDICT_STATE, PREDICT_IMAGES, label="`predict_image`")
    with torch.no_grad():
        expected = _Recorder(PREDICT_STATE).eval()(PREDICT_IMAGES).argmax(dim=1).tolist()
    shapes = out["shapes"]
    expect(shapes and all(tuple(shape) == (1, 1, 28, 28) for shape in shapes),
           f"predict_image should pass a batch of one image, shape (1, 1, 28, 28), to the network; it passed "
           f"{sorted({tuple(s) for s in shapes})}.")
    state = out["state"]
    expect(torch.equal(state["norm.running_mean"], PREDICT_STATE["norm.running_mean"]),
           "predict_image ran the network in training mode: call net.eval() first.")
    expect(all(graph is None for graph in out["graphs"]),
           "predict_image ran the network with gradients enabled: predict inside torch.no_grad().")
    for item, want in zip(out["got"], expected):
        value = item["value"]
        expect(isinstance(value, int) and not isinstance(value, bool),
               f"predict_image should return a Python int, not a {item['type']}.")
        expect(value == want, f"predict_image returned {value}; the class with the highest score is {want}.")


@pytest.mark.predict_image
def test_predict_image_follows_the_model(student):
    _device_failure("predict_image", student.probe(probe_on_meta, "predict_image", label="`predict_image`"),
                    "Move the image to the device of the network's parameters: "
                    "image.to(next(net.parameters()).device).")
