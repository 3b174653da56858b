"""Graders for 06-mlp-gpu: device helpers, loss_batch / evaluate / fit, an MNIST MLP, and the inside of
nn.Module (a custom layer, initialisation with apply, a shared layer, saving and loading parameters).

The judge decides, from data: probes call the student's code and return what it gave and what it did (values,
outputs, gradients, parameters and batch-norm statistics after the call, the bytes of a saved file), never a
verdict; the judge compares them with its own replay. Requirements about the student's process are judged by
their consequences: eval mode by outputs equal to the judge's eval-mode outputs of a model with dropout (and
by a loaded network giving the same output twice), train mode in ``fit`` by the batch-norm statistics after
training, no gradients in ``evaluate`` by a backward through its outputs that reaches no weight, a new
network in ``load_params`` by its outputs staying the same after the saved network's parameters are changed,
nn.Module-ness by parameters(), state_dict() and .to(device) working.

One mistake costs one task: where a task's function calls another graded function of the notebook
(``evaluate`` and ``fit`` call ``loss_batch`` and ``evaluate``), the probe swaps in, for the duration of the
call, a stand-in that is not that function's answer: it runs the model (and, in ``fit``, the optimiser step it
is given) and returns the numbers the judge computed for that call by its own replay (NaN for a loss or metric
other than the ones given), so that the task is judged on how it combines them. No reference solution is sent
to the student's process: the judge draws the parameters and batches and sends them as data. The model of
``mnist_mlp`` is trained by the probe's own plain SGD loop (not the student's ``fit``), with the student's
``MnistModel`` and ``loss_fn``.

Given-argument checks: ``loss_batch``, ``evaluate`` and ``fit`` are called with a loss (multi-class
margin loss) and a metric (mean probability of the true class) that differ from ``F.cross_entropy`` and
``accuracy``, so a function that calls its own loss or metric by name instead of the ones it is given
fails. ``load_params`` is given a network factory that is not the notebook's ``MnistModel``.

Accuracy (task mnist_mlp): the judge loads the MNIST test split (``course.data.mnist_test_split_tensors``,
seed 0: 8,000 training and 2,000 held-out images; a missing data file is a fault of the course and
propagates as DataNotFoundError). It sends the training images and labels, and the held-out images
normalised and disguised with ``autograder.judge.heldout.disguise`` under a secret drawn once per grading;
held-out labels stay in the judge. In the student's process ``MnistModel(784, 32, 10)`` is built after
``torch.manual_seed(seed)`` and trained with SGD lr 0.1, batch 100, 4 epochs, shuffled by a generator
seeded with ``seed``, with the student's ``loss_fn``; seed = COURSE_GRADING_SEED (default 0).

Calibration (``python benchmarks/calibrate_mlp_gpu.py --seeds 20``: the probe itself on the reference
notebook's code and on wrong variants, grading seeds 0-19, each with its own disguise secret, one torch
thread, 2 cores):
  reference                     held-out accuracy min 0.9180, median 0.9285, max 0.9340
                                training loss     min 0.197,  median 0.211,  max 0.241
  sigmoid hidden layer          accuracy min 0.8845, median 0.8960, max 0.8995; loss min 0.494
  no hidden activation          accuracy min 0.9005, median 0.9175, max 0.9225; loss min 0.263
  softmax before cross_entropy  accuracy min 0.7340, median 0.8353, max 0.9025; loss min 1.591
The disguise is HELDOUT_DISGUISE (noise only, as in 07): the published images give the same range
(min 0.9175, max 0.9345), while a shift of up to one pixel cost about 9 points (min 0.8205). Accuracy
alone cannot tell a model without (or with another) hidden activation from the reference: those are
caught by the linearity and ReLU checks, and softmax before cross_entropy by the loss-value check and
the loss threshold. Thresholds: accuracy >= 0.89 (0.028 below the reference minimum; a model that does
not train, e.g. layers created in forward, stays near 0.1); training loss <= 0.50 (twice the reference
maximum; softmax before cross_entropy cannot go below 1.46 with 10 classes and measured >= 1.59).
Training and prediction took a median 0.30 s per run.

ReLU check: the scores of a ReLU network are piecewise linear in the input, so along a line through
an input (step 1e-2 on a unit direction, float64, scores centred per row; log-probabilities and
probabilities are turned back into centred scores) their second difference is zero unless a hidden unit
switches within the step. Over grading seeds 0-19 the reference had at most 2.7e-15 on at least 7 of 8
rows (the check asks for 6 within 1e-11); tanh had at least 1.4e-8 on every row.

Edges (round 3): ``loss_fn`` is also judged on a batch of one image (a squeeze of y_hat or y breaks it) and on
the judge's scores of +-1000 (or their log-probabilities, for a model that returns them), where log(softmax(...))
gives inf and NaN gradients; the model's output must stay finite for inputs scaled by 1e4; every value of the
history, 'epoch' included, is a Python number.

Not enforced (with reasons): see the CONTRACT table below.
"""
import math
import os

import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.heldout import disguise, grading_secret
from autograder.judge.tasks import Task
from course import data

ASSIGNMENT = "06-mlp-gpu"
TASKS = [
    Task("device_helpers", 2, "get_default_device, to_device, DeviceDataLoader"),
    Task("loss_batch", 1, "accuracy and the loss / optimiser step of one batch"),
    Task("evaluate_loop", 2, "Evaluation in eval mode without gradients, weighted by batch size"),
    Task("fit_loop", 2, "The training loop returning a history"),
    Task("mnist_mlp", 3, "MLP 784 -> hidden -> 10 with ReLU, and its loss"),
    Task("custom_layer", 1, "MyLinear: a layer whose weight and bias are nn.Parameters"),
    Task("init_apply", 1, "Xavier-uniform weights and zero biases for every nn.Linear, with net.apply"),
    Task("shared_layer", 1, "One nn.Linear used twice: one set of parameters, gradients summed"),
    Task("save_load_params", 1, "A state_dict saved and loaded reproduces the predictions exactly"),
]

CONTRACT = {
    "device_helpers": {
        "get_default_device returns torch.device('cuda') when torch.cuda.is_available()":
            "test_default_device_follows_cuda",
        "get_default_device returns torch.device('cpu') otherwise, asking every time it is called":
            "test_default_device_follows_cuda",
        "get_default_device returns a torch.device (not a string)": "test_default_device_follows_cuda",
        "to_device moves a tensor to the device it is given and returns it": "test_to_device_moves_and_returns",
        "to_device moves each tensor of a list / tuple, recursively, and returns them":
            "test_to_device_moves_and_returns",
        "to_device to the CPU returns the same values": "test_to_device_moves_and_returns",
        "DeviceDataLoader yields every batch moved with to_device, the last partial batch included":
            "test_device_data_loader",
        "DeviceDataLoader gives a fresh pass every time it is iterated": "test_device_data_loader",
        "len(DeviceDataLoader) is the number of batches": "test_device_data_loader",
        "never .cuda(): the device comes from the argument": ["test_to_device_moves_and_returns",
                                                              "test_device_data_loader"],
        "DeviceDataLoader.__iter__ is a generator": "not enforced: any __iter__ that gives a fresh pass of moved "
                                                    "batches each time behaves the same",
    },
    "loss_batch": {
        "accuracy: fraction of rows whose largest score is at the true class": "test_accuracy_values",
        "accuracy works for logits, probabilities and log-probabilities": "test_accuracy_values",
        "accuracy returns a Python float": "test_accuracy_values",
        "loss_batch computes y_hat = net(X) and the loss with the loss_fn it is given":
            "test_loss_batch_without_optimizer",
        "loss_batch returns (loss as a Python float, batch size n, metric value or None)":
            "test_loss_batch_without_optimizer",
        "without an optimizer, loss_batch changes no parameter": "test_loss_batch_without_optimizer",
        "with a metric, loss_batch returns metric(y_hat, y) of the given metric": ["test_loss_batch_without_optimizer",
                                                                                 "test_loss_batch_with_optimizer"],
        "with an optimizer: zero_grad, backward, step (one step of the given optimizer per call)":
            "test_loss_batch_with_optimizer",
        "the loss returned is the loss before the step": "test_loss_batch_with_optimizer",
    },
    "evaluate_loop": {
        "evaluate puts net in eval mode": "test_evaluate_mode_and_no_grad",
        "evaluate runs without gradients": "test_evaluate_mode_and_no_grad",
        "evaluate runs every batch of data_iter with the loss_fn and metric it is given":
            ["test_evaluate_mode_and_no_grad", "test_evaluate_weighted_means"],
        "returns a dict with 'loss', 'metric' and 'n'": "test_evaluate_weighted_means",
        "'n' is the number of examples (any integral number)": "test_evaluate_weighted_means",
        "'loss' and 'metric' are means weighted by batch size (last partial batch)": "test_evaluate_weighted_means",
        "'loss' and 'metric' are Python numbers; 'metric' is None without a metric": "test_evaluate_weighted_means",
        "each batch goes through loss_batch": "not enforced: computing each batch's loss and metric inline gives "
                                              "the same values, which are checked",
        "it may leave the model in eval mode": "not enforced: leaving eval mode on or restoring the previous mode "
                                               "are both allowed",
    },
    "fit_loop": {
        "net in train mode for every training batch of every epoch": "test_fit_trains_in_train_mode",
        "one optimiser step per batch of train_iter, num_epochs times, with the given loss and optimizer":
            ["test_fit_trains_in_train_mode", "test_fit_parameters"],
        "history is a dict of lists, one entry per epoch": "test_fit_history",
        "'epoch' holds 1, 2, ... as Python numbers (not tensors)": "test_fit_history",
        "'train_loss' is the batch-size-weighted mean training loss of the epoch": "test_fit_history",
        "with valid_iter: 'valid_loss' and 'valid_metric' from evaluate with the given metric": "test_fit_history",
        "every value in the history is a Python number": "test_fit_history",
        "valid_iter=None: fit trains without evaluating": "test_fit_without_validation",
        "progress=True is accepted (same training, same history)": "test_fit_without_validation",
        "progress=True shows a bar over the epochs; it stays off by default":
            "not enforced: progress bars are switched off while grading, and a bar shown or not changes no result",
    },
    "mnist_mlp": {
        "MnistModel(in_size, hidden_size, out_size) is an nn.Module": "test_mlp_is_module_with_parameters",
        "defaults in_size=784, hidden_size=32, out_size=10; 784 -> 32 -> 10 has 25,450 parameters":
            "test_mlp_is_module_with_parameters",
        "layers created in __init__ (registered parameters), sizes from the arguments":
            ["test_mlp_is_module_with_parameters", "test_mlp_output_shape_and_batch"],
        "input (N, 1, 28, 28) float32, also (N, 784); output (N, out_size) float32":
            "test_mlp_output_shape_and_batch",
        "each image flattened on its own, batch dimension kept": "test_mlp_output_shape_and_batch",
        "h = ReLU(X W1 + b1): a ReLU hidden layer": ["test_mlp_is_nonlinear", "test_mlp_hidden_activation_is_relu"],
        "loss_fn(y_hat, y) is the mean cross-entropy of the model's output (logits + cross_entropy or "
        "log_softmax + nll_loss)": "test_mlp_loss",
        "loss_fn returns a tensor attached to y_hat: its gradient with respect to y_hat is that of the mean "
        "cross-entropy": "test_mlp_loss",
        "no softmax before cross_entropy": ["test_mlp_loss", "test_mlp_trains_to_accuracy"],
        "loss_fn works on a batch of one image (no squeeze of y_hat or y): value and gradient of the mean "
        "cross-entropy": "test_mlp_loss_edges",
        "loss_fn stays finite, with finite gradients, on scores of +-1000 (log-sum-exp, not log(softmax))":
            "test_mlp_loss_edges",
        "the model's output stays finite for inputs of large magnitude (F.log_softmax, not log(softmax))":
            "test_mlp_loss_edges",
        "nothing created on a fixed device in forward": "test_mlp_runs_on_any_device",
        "it trains to a useful accuracy on held-out images": "test_mlp_trains_to_accuracy",
    },
    "custom_layer": {
        "MyLinear(in_features, out_features) is an nn.Module": "test_custom_layer_parameters",
        "weight (in_features, out_features) and bias (out_features,) are registered nn.Parameters named "
        "weight and bias": "test_custom_layer_parameters",
        "the parameters appear in parameters() and state_dict() and move with .to(device)":
            "test_custom_layer_parameters",
        "weight drawn from N(0, 0.01^2), bias zeros": "test_custom_layer_initialisation",
        "forward: X (N, in_features) -> X @ weight + bias (N, out_features)": "test_custom_layer_forward",
        "gradients flow to weight and bias": "test_custom_layer_forward",
        "works inside nn.Sequential": "test_custom_layer_parameters",
    },
    "init_apply": {
        "every nn.Linear's weight is Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))":
            "test_init_linear_weights",
        "every nn.Linear's bias is zero (when it has one)": "test_init_linear_biases",
        "works through net.apply on nested nn.Sequential containers": ["test_init_linear_weights",
                                                                       "test_init_linear_biases"],
        "other modules are left unchanged": "test_init_leaves_other_modules",
        "init_weights returns nothing": "not enforced: net.apply ignores what the function returns",
    },
    "shared_layer": {
        "make_shared_net(in_features, hidden, out_features): Linear, ReLU, S, ReLU, S, ReLU, Linear":
            ["test_shared_net_structure", "test_shared_net_forward_and_gradients"],
        "S is one nn.Linear(hidden, hidden) used twice: its parameters are counted once":
            "test_shared_net_structure",
        "the shared weight's gradient is the sum of the gradients of both uses":
            "test_shared_net_forward_and_gradients",
        "output (N, out_features)": "test_shared_net_forward_and_gradients",
    },
    "save_load_params": {
        "save_params(net, path) writes net.state_dict() to path with torch.save": "test_save_params_writes_state_dict",
        "load_params(make_net, path) builds the network with the make_net it is given": "test_load_params_reproduces",
        "load_params loads the saved state_dict into it": "test_load_params_reproduces",
        "load_params returns the network in eval mode": "test_load_params_reproduces",
        "load_params returns a new network, not the one that was saved": "test_load_params_reproduces",
        "the loaded network reproduces the predictions exactly (torch.equal)": "test_load_params_reproduces",
    },
}

MLP_ACCURACY_MIN = 0.89
# Noise of 0.1 times the images' spread and no shift, as in 07: a shift of up to one pixel costs an MLP
# about 9 points of accuracy, noise nothing measurable, and noise alone defeats exact and hashed lookups.
HELDOUT_DISGUISE = {"max_shift": 0, "noise": 0.1}
MLP_LOSS_MAX = 0.50
MLP_TRAINING = {"hidden": 32, "lr": 0.1, "num_epochs": 4, "batch_size": 100}
MNIST_MEAN, MNIST_STD = data.MNIST_MEAN[0], data.MNIST_STD[0]
# Scores of +-1000 (4 rows of 10 classes; the true class at -1000 in rows 0 and 2): softmax underflows to 0
# there, so log(softmax(...)) gives -inf, while cross_entropy (log-sum-exp) gives the finite mean 1250.
EXTREME_SCORES = torch.zeros(4, 10)
EXTREME_SCORES[0, 0], EXTREME_SCORES[0, 3] = 1000.0, -1000.0
EXTREME_SCORES[1, 5] = 1000.0
EXTREME_SCORES[2] = -1000.0
EXTREME_SCORES[2, 7] = 1000.0
EXTREME_SCORES[3] = torch.linspace(-1000.0, 1000.0, 10)
EXTREME_LABELS = torch.tensor([3, 5, 2, 4])
LARGE_INPUT = 1e4          # inputs scaled by this: the model's scores lie hundreds apart


def grading_seed():
    """Seed of the graders' inputs and training (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base):
    """The generator seed of one input: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * grading_seed()


def normalize(images):
    """images: (N, 28, 28) uint8 -> (N, 1, 28, 28) float32, normalised with the MNIST mean and std."""
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def heldout_inputs(images, secret):
    """The held-out images as the student's process sees them: normalised, then disguised by ``secret``."""
    return disguise(normalize(images), secret, **HELDOUT_DISGUISE)


def number(value, what):
    """A student-facing rendering of a number described by a probe (its ``describe``)."""
    if value["kind"] in ("int", "float"):
        return f"{value['value']:g}"
    return f"{what} of type {value['type']}"


# ------------------------------------------------------------------------------------------ probes
def probe_mlp_structure(ns, seed, extreme_scores, extreme_log_probs, extreme_labels, large):
    """Shapes, parameters, per-image independence, nonlinearity, the loss and its gradient (also on a batch of
    one image and on the judge's extreme scores and their log-probabilities), the output for inputs scaled by
    ``large``, a run on meta."""
    import copy
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")

    def shapes(net):
        """(In the student's process.) The shapes of net.parameters(), or what calling it raised."""
        try:
            return [tuple(p.shape) for p in net.parameters()]
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    out = {}
    for key, args in (("32", (784, 32, 10)), ("64", (784, 64, 10)), ("small", (196, 20, 4))):
        torch.manual_seed(seed)
        out[f"params_{key}"] = shapes(MnistModel(*args))
    torch.manual_seed(seed)
    out["params_default"] = shapes(MnistModel())
    torch.manual_seed(seed)
    small = MnistModel(196, 20, 4)
    gen = torch.Generator().manual_seed(seed + 1)
    try:
        with torch.no_grad():
            out["small_y_hat"] = small(torch.randn(5, 196, generator=gen))
    except Exception as exc:
        out["small_y_hat"] = None
        out["small_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    torch.manual_seed(seed)
    net = MnistModel(784, 32, 10)
    X = torch.randn(6, 1, 28, 28, generator=gen)
    with torch.no_grad():
        out["y_hat"] = net(X)
        out["again"] = net(X)
        out["single"] = net(X[:1])
        out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(6)])
        out["mid"] = net((X[:3] + X[3:]) / 2)
        out["ends"] = (net(X[:3]) + net(X[3:])) / 2
        out["flat"] = net(X.reshape(6, 784))
    # The loss on a batch of 6 and of 9, with the model's own outputs; its gradient with respect to them.
    X9 = torch.randn(9, 1, 28, 28, generator=gen)
    y6, y9 = torch.tensor([0, 1, 2, 3, 4, 5]), torch.randint(0, 10, (9,), generator=gen)
    loss = loss_fn(net(X), y6)
    out["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else loss
    with torch.no_grad():
        out["y_hat9"] = net(X9)
    scores = out["y_hat9"].clone().requires_grad_(True)
    loss9 = loss_fn(scores, y9)
    out["loss9"] = loss9.detach() if isinstance(loss9, torch.Tensor) else loss9
    try:
        loss9.backward()
    except Exception as exc:
        out["loss9_backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    out["loss9_grad"] = scores.grad
    out["y9"] = y9
    # The loss on a batch of one image (a squeeze of y_hat or y breaks it), with its gradient.
    scores1 = net(X[:1]).detach().requires_grad_(True)
    out["y_hat1"] = scores1.detach().clone()
    try:
        loss1 = loss_fn(scores1, y6[:1])
        out["loss1"] = loss1.detach() if isinstance(loss1, torch.Tensor) else loss1
        loss1.backward()
        out["loss1_grad"] = scores1.grad
    except Exception as exc:
        out["loss1_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    # The loss on the judge's extreme scores (entries of +-1000) and on their log-probabilities, with gradients.
    for key, values in (("scores", extreme_scores), ("log_probs", extreme_log_probs)):
        t = values.clone().requires_grad_(True)
        try:
            value = loss_fn(t, extreme_labels)
            value.backward()
            out[f"extreme_{key}"] = {"loss": value.detach(), "grad": t.grad}
        except Exception as exc:
            out[f"extreme_{key}"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    # The model's output for inputs of large magnitude (its scores far apart).
    with torch.no_grad():
        out["y_hat_large"] = net(X * large)
    # Second differences along random directions, in float64: zero for a piecewise-linear (ReLU) net.
    try:
        net64 = copy.deepcopy(net).double()
        X64 = torch.randn(8, 784, generator=gen, dtype=torch.float64)
        d = torch.randn(8, 784, generator=gen, dtype=torch.float64)
        d = d / d.norm(dim=1, keepdim=True)
        eps = 1e-2
        with torch.no_grad():
            out["line"] = [net64(X64 - eps * d), net64(X64), net64(X64 + eps * d)]
    except Exception:  # a model that cannot run in float64 is not judged on this
        out["line"] = None
    try:
        meta = MnistModel(784, 32, 10).to("meta")
        y_hat = meta(torch.randn(4, 1, 28, 28, device="meta"))
        loss = loss_fn(y_hat, torch.zeros(4, dtype=torch.long, device="meta"))
        loss.backward()
        out["meta"] = {"y_hat": y_hat.detach(), "grads": [p.grad for p in meta.parameters()]}
    except Exception as exc:  # reported to the student as a device problem
        out["meta"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out


def probe_mlp_training(ns, X_train, y_train, X_test, hidden, lr, num_epochs, batch_size, seed, mean, std):
    """Train the student's model with a plain SGD loop and the student's loss_fn; predict held-out images.

    X_train: (N, 28, 28) uint8; X_test: (M, 1, 28, 28) float32, already normalised (and disguised).
    """
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")
    Xtr = ((X_train.float() / 255 - mean) / std).unsqueeze(1)
    torch.manual_seed(seed)
    net = MnistModel(784, hidden, 10)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(num_epochs):
        net.train()
        order = torch.randperm(len(Xtr), generator=gen)
        for i in range(0, len(Xtr), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(net(Xtr[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(X_test[i:i + 500]).argmax(dim=1) for i in range(0, len(X_test), 500)])
        loss = float(loss_fn(net(Xtr[:2000]), y_train[:2000]))
    return {"pred": pred, "train_loss": loss}


def probe_default_device(ns):
    """get_default_device() with torch.cuda.is_available reporting True, then False: what it returns."""
    import torch
    get_default_device = ns.require("get_default_device")
    original = torch.cuda.is_available
    result = {}
    try:
        for flag in (True, False):
            torch.cuda.is_available = lambda flag=flag: flag
            device = get_default_device()
            # torch.device and str travel as they are; anything else as its type name and text
            result[str(flag)] = device if isinstance(device, (str, torch.device)) else \
                {"type": type(device).__name__, "text": str(device)[:100]}
    finally:
        torch.cuda.is_available = original
    return result


def probe_to_device(ns):
    """to_device on a tensor, a list, a tuple and a nested list, to the meta device and back to the CPU."""
    import torch
    to_device = ns.require("to_device")
    meta = torch.device("meta")
    X, y = torch.randn(3, 2), torch.arange(3)

    def describe(value):
        if isinstance(value, torch.Tensor):
            return {"type": "tensor", "device": value.device.type, "shape": tuple(value.shape)}
        if isinstance(value, (list, tuple)):
            return {"type": "list" if isinstance(value, list) else "tuple",
                    "items": [describe(v) for v in value]}
        return {"type": "none" if value is None else type(value).__name__}

    out = {}
    for key, data in (("one", X), ("pair", [X, y]), ("tuple", (X, y)), ("nested", [[X, y], X])):
        try:
            out[key] = describe(to_device(data, meta))
        except Exception as exc:
            out[key] = {"type": "error", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    back = to_device(X, torch.device("cpu"))
    out.update({"back": back if isinstance(back, torch.Tensor) else None, "X": X})
    return out


def probe_device_loader(ns):
    """Iterate a DeviceDataLoader to the meta device twice; train a small model on its batches."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    DeviceDataLoader = ns.require("DeviceDataLoader", kind="class")
    dl = DataLoader(TensorDataset(torch.randn(10, 1, 28, 28), torch.arange(10) % 10), batch_size=4)
    loader = DeviceDataLoader(dl, torch.device("meta"))
    out = {"len": len(loader), "passes": []}
    for _ in range(2):
        batches = []
        for batch in loader:
            batches.append([(tuple(t.shape), t.device.type) if isinstance(t, torch.Tensor) else None
                            for t in batch])
        out["passes"].append(batches)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).to("meta")
    try:
        for X, y in loader:
            torch.nn.functional.cross_entropy(net(X), y).backward()
        out["grads"] = [p.grad for p in net.parameters()]
    except Exception as exc:
        out["train_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


def probe_loss_batch(ns, start, X, y, scores, labels, lr):
    """accuracy on known scores; loss_batch without and with an SGD optimiser (lr), with a margin loss and a
    metric, from the judge's parameters ``start``: what it returns and the parameters after."""
    import torch
    import torch.nn.functional as F
    accuracy = ns.require("accuracy")
    loss_batch = ns.require("loss_batch")

    def raw(value):
        """(In the student's process.) A returned value as data: None, numbers and tensors as they are."""
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, torch.Tensor):
            return value.detach() if value.device.type == "meta" else value.detach().cpu()
        if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
            return {"numpy": type(value).__name__, "value": value.item()}
        return {"type": type(value).__name__}

    def returned(result):
        items = [raw(r) for r in result] if isinstance(result, (tuple, list)) else None
        return {"type": type(result).__name__, "items": items}

    out = {"acc_logits": raw(accuracy(scores, labels)),
           "acc_logprobs": raw(accuracy(F.log_softmax(scores, dim=1), labels)),
           "acc_probs": raw(accuracy(F.softmax(scores[:5], dim=1), labels[:5])),
           "acc_single": raw(accuracy(scores[3:4], labels[3:4]))}

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    net = torch.nn.Linear(4, 3)
    net.load_state_dict(start)
    out["plain"] = returned(loss_batch(net, margin_loss, X, y))
    out["with_metric"] = returned(loss_batch(net, margin_loss, X, y, metric=true_class_prob))
    out["after_plain"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(start)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    out["steps"] = [returned(loss_batch(net, margin_loss, X, y, optimizer, true_class_prob)) for _ in range(2)]
    out["after_steps"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return out


def probe_evaluate(ns, start, batches, table, p):
    """evaluate twice (with and without a metric) on the judge's batches, from train mode, with a model whose
    linear layer holds the judge's ``start`` and is followed by dropout(p); it keeps every input and output.

    loss_batch is replaced for the call by a stand-in that runs the model on the batch and returns the judge's
    numbers for that batch (``table``; NaN for a loss or metric other than the ones evaluate is given).
    Returned: evaluate's results, every (input, output) of the model, and the weight's gradient after a
    backward through each output (None where the output has no graph).
    """
    import torch
    import torch.nn.functional as F
    evaluate = ns.require("evaluate")

    def raw(value):
        """(In the student's process.) A returned value as data: None, numbers and tensors as they are."""
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, torch.Tensor):
            return value.detach() if value.device.type == "meta" else value.detach().cpu()
        if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
            return {"numpy": type(value).__name__, "value": value.item()}
        return {"type": type(value).__name__}

    class Watched(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.dropout = torch.nn.Dropout(p)
            self.seen = []

        def forward(self, X):
            out = self.dropout(self.linear(X))
            self.seen.append((X, out))
            return out

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    nan = float("nan")

    def table_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
        net(X)
        rows = [row for (a, _), row in zip(batches, table) if a.shape == X.shape and torch.equal(a, X)]
        row = rows[0] if rows else {"loss": nan, "n": len(X), "metric": nan}
        given = None if metric is None else row["metric"] if metric is true_class_prob else nan
        return (row["loss"] if loss_fn is margin_loss else nan), row["n"], given

    def plain(result):
        if not isinstance(result, dict):
            return {"__type__": type(result).__name__}
        return {k: raw(v) for k, v in result.items() if isinstance(k, str)}

    torch.manual_seed(0)                                   # the dropout masks, should the model train
    net = Watched()
    net.linear.load_state_dict(start)
    scope = evaluate.__globals__
    saved = scope.get("loss_batch", None)
    had = "loss_batch" in scope
    scope["loss_batch"] = table_loss_batch
    try:
        net.train()
        result = evaluate(net, margin_loss, batches, true_class_prob)
        net.train()
        result_none = evaluate(net, margin_loss, batches)
    finally:
        if had:
            scope["loss_batch"] = saved
        else:
            scope.pop("loss_batch", None)
    grads = []
    for _, out in net.seen:
        net.zero_grad(set_to_none=True)
        try:
            out.sum().backward()
        except RuntimeError:                               # no graph: no gradient
            pass
        grads.append(net.linear.weight.grad)
    return {"result": plain(result), "result_none": plain(result_none),
            "seen": [(X.detach(), out.detach()) for X, out in net.seen], "grads": grads}


def probe_fit(ns, start, train_batches, valid_batches, train_table, valid_table, lr, num_epochs):
    """fit three times (with validation, without, with progress=True) on a Linear(4, 3) + BatchNorm1d(3)
    model that starts from the judge's ``start`` in eval mode, with SGD(lr): the histories and the model's
    state_dict after each (batch-norm statistics included).

    loss_batch and evaluate are replaced for the call by stand-ins: loss_batch runs the model and the optimiser
    step it is given and returns the judge's numbers for its k-th call (``train_table``); evaluate puts the
    model in eval mode and returns the judge's numbers for its k-th call (``valid_table``); both give NaN
    for a loss or metric other than the ones fit is given.
    """
    import torch
    import torch.nn.functional as F
    fit = ns.require("fit")

    def raw(value):
        """(In the student's process.) A returned value as data: None, numbers and tensors as they are."""
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, torch.Tensor):
            return value.detach() if value.device.type == "meta" else value.detach().cpu()
        if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
            return {"numpy": type(value).__name__, "value": value.item()}
        return {"type": type(value).__name__}

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    nan = float("nan")

    def stand_ins():
        steps, evaluations = iter(train_table), iter(valid_table)

        def table_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
            row = next(steps, None) or {"loss": nan, "n": len(X)}
            objective = loss_fn(net(X), y)
            step = optimizer is not None
            if step:
                optimizer.zero_grad()
                objective.backward()
                optimizer.step()
            return (row["loss"] if loss_fn is margin_loss else nan), row["n"], (None if metric is None else nan)

        def table_evaluate(net, loss_fn, data_iter, metric=None):
            net.eval()                                     # left in eval mode, as evaluate may: fit switches back
            count = sum(len(X) for X, _ in data_iter)
            row = next(evaluations, None) or {"loss": nan, "metric": nan}
            given = None if metric is None else row["metric"] if metric is true_class_prob else nan
            return {"loss": row["loss"] if loss_fn is margin_loss else nan, "metric": given, "n": count}

        return table_loss_batch, table_evaluate

    def history_data(history):
        if not isinstance(history, dict):
            return {"__type__": type(history).__name__}
        return {key: {"type": type(values).__name__,
                      "items": [raw(v) for v in values] if isinstance(values, (list, tuple)) else None}
                for key, values in history.items() if isinstance(key, str)}

    def model():
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        net.load_state_dict(start)
        net.eval()                                         # fit must switch to train mode itself
        return net

    scope = fit.__globals__
    saved = {name: scope[name] for name in ("loss_batch", "evaluate") if name in scope}
    runs = {}
    try:
        for name, kwargs in (("main", {"valid_iter": valid_batches, "metric": true_class_prob}),
                             ("no_valid", {}),
                             ("progress", {"valid_iter": valid_batches, "metric": true_class_prob, "progress": True})):
            scope["loss_batch"], scope["evaluate"] = stand_ins()
            net = model()
            optimizer = torch.optim.SGD(net.parameters(), lr=lr)
            if name == "main":                             # its errors reach the student as they are
                history = fit(net, margin_loss, optimizer, train_batches, num_epochs, **kwargs)
            else:
                try:
                    history = fit(net, margin_loss, optimizer, train_batches, num_epochs, **kwargs)
                except Exception as exc:
                    runs[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
                    continue
            runs[name] = {"history": history_data(history),
                          "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
    finally:
        for name in ("loss_batch", "evaluate"):
            if name in saved:
                scope[name] = saved[name]
            else:
                scope.pop(name, None)
    return runs


def probe_custom_layer(ns, seed):
    """MyLinear's parameters, forward, gradients, initialisation, device move and use in nn.Sequential."""
    import torch
    MyLinear = ns.require("MyLinear", kind="class")
    out = {}
    torch.manual_seed(seed)
    layer = MyLinear(5, 3)
    try:
        named = dict(layer.named_parameters())
        out["state_keys"] = sorted(layer.state_dict())
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    out["names"] = sorted(named)
    out["shapes"] = {k: tuple(v.shape) for k, v in named.items()}
    # the attributes themselves (a tensor as its values), to tell a plain tensor from a missing attribute
    out["attr"] = {k: (getattr(layer, k).detach().clone() if isinstance(getattr(layer, k, None), torch.Tensor)
                       else None if getattr(layer, k, None) is None else type(getattr(layer, k)).__name__)
                   for k in ("weight", "bias")}
    if "weight" not in named or "bias" not in named:
        return out
    gen = torch.Generator().manual_seed(seed + 7)
    out["cases"] = []
    for (fan_in, fan_out, n) in ((5, 3, 4), (7, 2, 1)):
        torch.manual_seed(seed)
        layer = MyLinear(fan_in, fan_out)
        with torch.no_grad():               # values away from the initialisation, so that weight matters
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
        X = torch.randn(n, fan_in, generator=gen)
        R = torch.randn(n, fan_out, generator=gen)
        y_hat = layer(X)
        case = {"X": X, "R": R, "W": layer.weight.detach().clone(), "b": layer.bias.detach().clone(),
                "y_hat": y_hat.detach() if isinstance(y_hat, torch.Tensor) else None}
        try:
            (y_hat * R).sum().backward()
        except Exception as exc:
            case["backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        case["W_grad"], case["b_grad"] = layer.weight.grad, layer.bias.grad
        out["cases"].append(case)
    torch.manual_seed(seed)
    big = MyLinear(1000, 400)
    w, b = big.weight.detach().double(), big.bias.detach()
    out["init"] = {"shape": tuple(w.shape), "mean": w.mean().item(), "std": w.std().item(),
                   "beyond_2std": (w.abs() > 0.02).double().mean().item(), "bias_max": b.abs().max().item()}
    moved = MyLinear(5, 3).to("meta")
    out["moved"] = {k: v.detach() for k, v in moved.named_parameters()}
    seq = torch.nn.Sequential(MyLinear(4, 8), torch.nn.ReLU(), MyLinear(8, 2))
    out["sequential_params"] = sum(p.numel() for p in seq.parameters())
    with torch.no_grad():
        y_hat = seq(torch.randn(3, 4, generator=gen))
    out["sequential_shape"] = tuple(y_hat.shape)
    return out


def probe_init_apply(ns, seed, others):
    """net.apply(init_weights) on nested containers holding Linear layers (with and without bias) and other
    layers that hold the judge's values ``others`` (by module name): the Linear weights' statistics and the
    other layers' state after the call."""
    import torch
    from torch import nn
    init_weights = ns.require("init_weights")
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Sequential(nn.Linear(1000, 400), nn.ReLU(), nn.LayerNorm(400)),
        nn.Sequential(nn.Sequential(nn.Linear(400, 1500, bias=False)), nn.Tanh()),
        nn.Conv2d(3, 8, 5),
        nn.BatchNorm1d(1500),
        nn.Linear(1500, 20),
    )
    modules = dict(net.named_modules())
    for name, state in others.items():
        modules[name].load_state_dict(state)
    out = {}
    try:
        net.apply(init_weights)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return out
    linears = []
    for layer in (net[0][0], net[1][0][0], net[4]):
        w = layer.weight.detach().double()
        linears.append({"fan_in": layer.in_features, "fan_out": layer.out_features, "min": w.min().item(),
                        "max": w.max().item(), "mean": w.mean().item(), "std": w.std().item(),
                        "bias_max": None if layer.bias is None else layer.bias.detach().abs().max().item()})
    out["linears"] = linears
    out["others"] = {name: {k: v.detach().clone() for k, v in modules[name].state_dict().items()} for name in others}
    return out


def probe_shared_layer(ns, seed, sizes):
    """make_shared_net: which nn.Linear runs when (forward hooks), output, and gradients per parameter."""
    import torch
    from torch import nn
    make_shared_net = ns.require("make_shared_net")
    in_features, hidden, out_features, n = sizes
    torch.manual_seed(seed)
    net = make_shared_net(in_features, hidden, out_features)
    try:
        params = list(net.parameters())
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}", "type": type(net).__name__}
    out = {"n_params": sum(p.numel() for p in params), "n_tensors": len(params)}
    keys = {id(p): i for i, p in enumerate(params)}
    calls = []
    hooks = [m.register_forward_hook(lambda m, inp, outp, i=i: calls.append(i)) for i, m in enumerate(linears)]
    gen = torch.Generator().manual_seed(seed + 11)
    X = torch.randn(n, in_features, generator=gen)
    try:
        y_hat = net(X)
    finally:
        for h in hooks:
            h.remove()
    R = torch.randn(tuple(y_hat.shape), generator=gen)
    (y_hat * R).sum().backward()
    out.update({
        "X": X, "R": R, "y_hat": y_hat.detach(), "calls": calls,
        "linears": [{"weight": keys.get(id(m.weight)), "bias": None if m.bias is None else keys.get(id(m.bias)),
                     "shape": tuple(m.weight.shape)} for m in linears],
        "values": [p.detach().clone() for p in params],
        "grads": [None if p.grad is None else p.grad.clone() for p in params],
    })
    return out


def probe_save_load(ns, states, X, shift, seed):
    """save_params / load_params in a fresh folder of the working folder, for two networks holding the
    judge's ``states``: the files written (their bytes), and the outputs on X of the saved network and of
    the loaded one (twice, then once more after ``shift`` was added to the saved network's parameters)."""
    import os
    import re
    import shutil
    import tempfile
    import torch
    from torch import nn
    save_params = ns.require("save_params")
    load_params = ns.require("load_params")

    def make_mlp():
        return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))

    def make_small():
        return nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))

    folder = tempfile.mkdtemp(dir=os.getcwd())
    out = {}
    try:
        for name, make_net, filename in (("mlp", make_mlp, "mlp.params"), ("small", make_small, "small-net.pt")):
            original = make_net()
            original.load_state_dict(states[name])
            original.train()
            torch.manual_seed(seed)              # make_net inside load_params draws weights of its own
            here = tempfile.mkdtemp(dir=folder)  # a folder of its own: what save_params writes there
            path = os.path.join(here, filename)
            save_params(original, path)
            case = {"files": {}}
            for entry in sorted(os.listdir(here))[:10]:
                with open(os.path.join(here, entry), "rb") as f:
                    content = f.read(1 << 20)
                case["files"][entry] = torch.tensor(list(content), dtype=torch.uint8)
            original.eval()
            with torch.no_grad():
                case["original"] = original(X)
            try:
                loaded = load_params(make_net, path)
            except Exception as exc:
                message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc).splitlines()[0]) if str(exc) else ""
                case["load_error"] = f"{type(exc).__name__}: {message[:160]}"
                out[name] = case
                continue
            case["loaded_type"] = type(loaded).__name__
            try:
                with torch.no_grad():
                    case["pred"] = loaded(X)
                    case["pred_again"] = loaded(X)
                    for p in original.parameters():
                        p.add_(shift)
                    case["pred_after_shift"] = loaded(X)
            except Exception as exc:
                case["pred_error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
            out[name] = case
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------------------- mnist_mlp
@pytest.fixture(scope="module")
def mlp_structure(student):
    return student.probe(probe_mlp_structure, _seed(0), EXTREME_SCORES, F.log_softmax(EXTREME_SCORES, dim=1),
                         EXTREME_LABELS, LARGE_INPUT, label="`MnistModel`")


@pytest.mark.mnist_mlp
def test_mlp_is_module_with_parameters(mlp_structure):
    out = mlp_structure
    for key, (i, h, o) in (("32", (784, 32, 10)), ("64", (784, 64, 10)), ("small", (196, 20, 4)),
                           ("default", (784, 32, 10))):
        expected = i * h + h + h * o + o
        shapes = out[f"params_{key}"]
        call = "MnistModel()" if key == "default" else f"MnistModel({i}, {h}, {o})"
        if isinstance(shapes, dict):
            fail(f"{call} should be an nn.Module (a subclass, or an nn.Sequential): calling its parameters() "
                 f"raised {shapes['error']}.")
        got = sum(math.prod(shape) for shape in shapes)
        expect(got == expected,
               f"{call} has {got:,} trainable parameters; {i} -> {h} -> {o} has {expected:,}. Create both "
               f"nn.Linear layers in __init__, sized by the arguments (defaults 784, 32, 10); layers made inside "
               f"forward are not registered, and new at every call.")


@pytest.mark.mnist_mlp
def test_mlp_output_shape_and_batch(mlp_structure):
    out = mlp_structure
    expect_tensor(out["y_hat"], "MnistModel(784, 32, 10) applied to X of shape (6, 1, 28, 28)", shape=(6, 10),
                  dtype=torch.float32, finite=True)
    expect_tensor(out["single"], "the output for a batch of one image (1, 1, 28, 28)", shape=(1, 10))
    expect_close(out["again"], out["y_hat"], "a second call on the same batch (the model should be "
                 "deterministic and keep its weights)", rtol=1e-5, atol=1e-6)
    expect_close(out["rows"], out["y_hat"], "the outputs for the images one at a time compared with the "
                 "whole batch (flatten each image, keep the batch dimension)", rtol=1e-4, atol=1e-5)
    expect_tensor(out["flat"], "the output for X of shape (6, 784)", shape=(6, 10))
    expect_close(out["flat"], out["y_hat"], "the output for X reshaped to (6, 784)", rtol=1e-4, atol=1e-5)
    expect("small_error" not in out, f"MnistModel(196, 20, 4) applied to X of shape (5, 196) raised "
           f"{out.get('small_error')}: use in_size, hidden_size and out_size, not fixed numbers.")
    expect_tensor(out["small_y_hat"], "MnistModel(196, 20, 4) applied to X of shape (5, 196) (use in_size and "
                  "out_size, not fixed numbers)", shape=(5, 4), dtype=torch.float32)


@pytest.mark.mnist_mlp
def test_mlp_is_nonlinear(mlp_structure):
    out = mlp_structure
    gap = (out["mid"].double() - out["ends"].double()).abs().max().item()
    expect(gap > 1e-3,
           "MnistModel behaves like a linear map (the output for the average of two images equals the "
           f"average of their outputs within 1e-3; largest difference {gap:.2g}): apply ReLU to the hidden layer.")


def _output_kind(y_hat):
    """'probabilities', 'log-probabilities' or 'scores' for a (N, C) float64 output (tolerance 1e-4)."""
    rows = y_hat.shape[1] > 1
    if rows and (y_hat >= 0).all() and torch.allclose(y_hat.sum(1), torch.ones(len(y_hat), dtype=y_hat.dtype),
                                                      atol=1e-4):
        return "probabilities"
    if rows and (y_hat <= 0).all() and torch.allclose(y_hat.logsumexp(1), torch.zeros(len(y_hat), dtype=y_hat.dtype),
                                                      atol=1e-4):
        return "log-probabilities"
    return "scores"


def _log_probs(y_hat, kind):
    """Log-probabilities of the distribution an output of ``kind`` represents (float64)."""
    if kind == "probabilities":
        return y_hat.clamp_min(1e-300).log()
    return torch.log_softmax(y_hat, dim=1)


@pytest.mark.mnist_mlp
def test_mlp_hidden_activation_is_relu(mlp_structure):
    line = mlp_structure["line"]
    if line is None:
        return                           # the model does not run in float64: not judged here
    y_hat = mlp_structure["y_hat"].double()
    kind = _output_kind(y_hat)
    a, b, c = (_log_probs(v.double(), kind) for v in line)
    a, b, c = (v - v.mean(dim=1, keepdim=True) for v in (a, b, c))   # scores up to a constant per row
    second = (a - 2 * b + c).abs().amax(dim=1)
    straight = int((second <= 1e-11).sum())
    expect(straight >= 6,
           "MnistModel's hidden activation does not behave like ReLU: along a straight line through an input, "
           f"the scores of a ReLU network change linearly except where a hidden unit switches on or off, but "
           f"yours curve for {8 - straight} of 8 inputs (tolerance 1e-11 in float64). Use F.relu / nn.ReLU for "
           "the hidden layer (not sigmoid or tanh).")


@pytest.mark.mnist_mlp
def test_mlp_loss(mlp_structure):
    out = mlp_structure
    loss = out["loss"]
    expect(isinstance(loss, torch.Tensor), f"loss_fn(y_hat, y) should return a tensor (so that backward() works), "
           f"not a {type(loss).__name__}.")
    expect_tensor(loss, "loss_fn(y_hat, y)", shape=(), finite=True)
    y_hat, y = out["y_hat9"].double(), out["y9"]
    loss9 = out["loss9"]
    expect_tensor(loss9, "loss_fn(y_hat, y) for a batch of 9 images", shape=())
    grad = out["loss9_grad"]
    expect(grad is not None, "loss_fn(y_hat, y) is detached from the model: backward() through it gives y_hat no "
           "gradient, so none can reach the weights. Return the loss tensor itself (no .item(), .detach() or new "
           "tensor).")
    kind = _output_kind(y_hat)
    expected = -_log_probs(y_hat, kind)[torch.arange(len(y)), y].mean()
    got = float(loss9)
    if abs(got - expected.item()) <= 1e-4 + 1e-4 * abs(expected.item()):
        # the gradient with respect to y_hat: that of cross_entropy, or of nll_loss on log-probabilities
        wants = []
        for loss_of in (F.cross_entropy, F.nll_loss):
            scores = y_hat.clone().requires_grad_(True)
            loss_of(scores, y).backward()
            wants.append(scores.grad)
        expect(tuple(grad.shape) == tuple(y_hat.shape) and any(
            torch.allclose(grad.double(), want, rtol=1e-4, atol=1e-6) for want in wants),
            "The gradient of loss_fn(y_hat, y) with respect to y_hat (batch of 9) is not that of the mean "
            "cross-entropy (F.cross_entropy on scores, or F.nll_loss on log-probabilities; tolerance 1e-4 relative, "
            "1e-6 absolute): compute the loss from y_hat with the torch loss itself.")
        return
    if kind == "probabilities" and abs(got - F.cross_entropy(y_hat, y).item()) <= 1e-4:
        fail("MnistModel returns probabilities (softmax) and loss_fn is cross_entropy, which applies softmax "
             "itself: the probabilities are squashed a second time and the gradients barely move. Return raw "
             "scores (logits) from the model, or end it with F.log_softmax and use F.nll_loss.")
    if kind == "scores" and abs(got - F.nll_loss(y_hat, y).item()) <= 1e-4:
        fail("loss_fn is nll_loss applied to raw scores: nll_loss expects log-probabilities (it only picks "
             "-y_hat[i, y_i] and averages), so the loss can fall without bound. Use F.cross_entropy on the "
             "model's raw scores, or end the model with F.log_softmax(..., dim=1).")
    if abs(got - 9 * expected.item()) <= 1e-3 * abs(9 * expected.item()) + 1e-4:
        fail("loss_fn returns the sum of the cross-entropies of the batch; it should return their mean "
             "(reduction='mean', the default).")
    fail(f"loss_fn(y_hat, y) for a batch of 9 images is {got:.6g}; the mean cross-entropy of your model's "
         f"output ({kind}) is {expected.item():.6g} (tolerance 1e-4 relative and absolute). Use F.cross_entropy "
         "on raw scores, or F.nll_loss on log_softmax outputs.")


def _loss_and_gradient(loss, grad, y_hat, y, what):
    """Check a loss value and its gradient with respect to y_hat (float64) against the mean cross-entropy of
    y_hat read as scores or as log-probabilities (F.cross_entropy, or F.nll_loss on log-probabilities)."""
    expect(isinstance(loss, torch.Tensor) and loss.numel() == 1 and bool(torch.isfinite(loss).all()),
           f"loss_fn(y_hat, y) for {what} is {_value_in_words(loss)}; the mean cross-entropy is finite there. "
           "Compute it with F.cross_entropy on raw scores (or F.nll_loss on F.log_softmax outputs), which use "
           "log-sum-exp, not log(softmax(...)).")
    wants = []
    for loss_of in (F.cross_entropy, F.nll_loss):
        scores = y_hat.double().clone().requires_grad_(True)
        value = loss_of(scores, y)
        value.backward()
        wants.append((value.item(), scores.grad))
    expected = wants[0][0] if _output_kind(y_hat.double()) == "scores" else wants[1][0]
    got = float(loss)
    expect(abs(got - expected) <= 1e-4 + 1e-4 * abs(expected),
           f"loss_fn(y_hat, y) for {what} is {got:.6g}; the mean cross-entropy there is {expected:.6g} (tolerance "
           "1e-4 relative and absolute).")
    expect(isinstance(grad, torch.Tensor) and tuple(grad.shape) == tuple(y_hat.shape)
           and bool(torch.isfinite(grad).all())
           and any(torch.allclose(grad.double(), want, rtol=1e-4, atol=1e-6) for _, want in wants),
           f"The gradient of loss_fn(y_hat, y) with respect to y_hat for {what} is not that of the mean "
           f"cross-entropy{' (it is not finite)' if isinstance(grad, torch.Tensor) and not torch.isfinite(grad).all() else ''}"
           " (tolerance 1e-4 relative, 1e-6 absolute).")


def _value_in_words(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return f"{value.item():g}"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


@pytest.mark.mnist_mlp
def test_mlp_loss_edges(mlp_structure):
    out = mlp_structure
    kind = _output_kind(out["y_hat9"].double())
    if kind == "probabilities" or not isinstance(out["loss9"], torch.Tensor):
        return                           # judged by test_mlp_loss
    y_hat1 = out["y_hat1"]
    what1 = "a batch of one image (y_hat of shape (1, 10), y of shape (1,))"
    expect("loss1_error" not in out, f"For {what1}, loss_fn(y_hat, y) raised {out.get('loss1_error')} Keep the "
           "batch dimension (no squeeze of y_hat or y).")
    _loss_and_gradient(out["loss1"], out.get("loss1_grad"), y_hat1, torch.tensor([0]), what1)
    key = "extreme_scores" if kind == "scores" else "extreme_log_probs"
    inputs = EXTREME_SCORES if kind == "scores" else F.log_softmax(EXTREME_SCORES, dim=1)
    what = ("raw scores (like your model's output) as far apart as +-1000" if kind == "scores" else
            "log-probabilities (like your model's output) of scores as far apart as +-1000")
    case = out[key]
    expect("error" not in case, f"For {what}, loss_fn(y_hat, y) raised {case.get('error')}")
    _loss_and_gradient(case["loss"], case["grad"], inputs, EXTREME_LABELS, what)
    large = expect_tensor(out["y_hat_large"], f"MnistModel(784, 32, 10) applied to images scaled by {LARGE_INPUT:g}",
                          shape=(6, 10))
    expect(bool(torch.isfinite(large).all()),
           f"MnistModel's output for images scaled by {LARGE_INPUT:g} (scores far apart) holds -inf or NaN: "
           "log(softmax(...)) underflows to log(0). Return raw scores, or end with F.log_softmax(..., dim=1).")


@pytest.mark.mnist_mlp
def test_mlp_runs_on_any_device(mlp_structure):
    meta = mlp_structure["meta"]
    if "error" in meta:
        fail("MnistModel and loss_fn should run forward and backward on whatever device the model and the "
             f"batch are on (checked on a device other than the CPU), but they raised {meta['error']}. "
             "Do not create tensors on a fixed device inside forward.")
    y_hat, grads = meta["y_hat"], meta["grads"]
    output = f"on {y_hat.device.type} with shape {tuple(y_hat.shape)}" if isinstance(y_hat, torch.Tensor) \
        else "not a tensor"
    there = sum(isinstance(g, torch.Tensor) and g.device.type == "meta" for g in grads)
    expect(isinstance(y_hat, torch.Tensor) and y_hat.device.type == "meta" and tuple(y_hat.shape) == (4, 10)
           and grads and there == len(grads),
           "On another device, MnistModel's output (N, 10) and its parameters' gradients should stay on that "
           f"device (the output was {output}, {there} of {len(grads)} parameters got a gradient there).")


@pytest.fixture(scope="module")
def heldout_secret():
    """The disguise secret of this grading (drawn in the judge, never sent to the student's process)."""
    return grading_secret()


@pytest.mark.mnist_mlp
def test_mlp_trains_to_accuracy(student, heldout_secret):
    X_train, y_train, X_test, y_test = data.mnist_test_split_tensors(2000, seed=0)
    cfg = MLP_TRAINING
    out = student.probe(probe_mlp_training, X_train, y_train, heldout_inputs(X_test, heldout_secret),
                        cfg["hidden"], cfg["lr"], cfg["num_epochs"], cfg["batch_size"], grading_seed(),
                        MNIST_MEAN, MNIST_STD, timeout=120, label="training MnistModel with loss_fn")
    pred = expect_tensor(out["pred"], "the predictions for the held-out images", shape=(len(X_test),))
    loss = out["train_loss"]
    expect(loss == loss and 0 <= loss <= MLP_LOSS_MAX,
           f"After training (SGD, lr {cfg['lr']}, {cfg['num_epochs']} epochs), loss_fn on training images is "
           f"{loss:.3f}; a mean cross-entropy between 0 and {MLP_LOSS_MAX:.2f} is expected. Check that "
           "loss_fn is the mean cross-entropy of the model's output: raw scores with F.cross_entropy, or "
           "F.log_softmax outputs with F.nll_loss.")
    acc = (pred.long() == y_test).double().mean().item()
    expect(acc >= MLP_ACCURACY_MIN,
           f"MnistModel(784, {cfg['hidden']}, 10) trained with loss_fn ({cfg['num_epochs']} epochs of SGD, lr "
           f"{cfg['lr']}, batch {cfg['batch_size']}, on 8,000 MNIST images) reaches {acc:.3f} accuracy on "
           f"held-out images; at least {MLP_ACCURACY_MIN:.3f} is expected.")


# ------------------------------------------------------------------------------------ device_helpers
def _in_words(value):
    """A returned value described in the student's terms (from the probes' plain descriptions)."""
    kind = value.get("type")
    if kind == "tensor":
        return f"a tensor on the {value['device']} device"
    if kind in ("list", "tuple"):
        return f"a {kind} of [" + ", ".join(_in_words(v) for v in value["items"]) + "]"
    if kind == "error":
        return f"nothing: it raised {value['error']}"
    return "None" if kind == "none" else f"a {kind}"


@pytest.mark.device_helpers
def test_default_device_follows_cuda(student):
    out = student.probe(probe_default_device, label="`get_default_device`")
    for flag, want in (("True", "cuda"), ("False", "cpu")):
        got = out[flag]
        when = "while a GPU was available" if flag == "True" else "while no GPU was available"
        if not isinstance(got, torch.device):
            kind, text = ("str", got) if isinstance(got, str) else (got["type"], got["text"])
            fail(f"get_default_device() returned a {kind} ({text!r}) {when}; return a torch.device, "
                 f"e.g. torch.device('{want}').")
        expect(got.type == want,
               f"get_default_device() returned torch.device('{got}') {when}; expected "
               f"torch.device('{want}'). Ask torch.cuda.is_available() each time it is called.")


@pytest.mark.device_helpers
def test_to_device_moves_and_returns(student):
    out = student.probe(probe_to_device, label="`to_device`")
    one = out["one"]
    expect(one.get("type") == "tensor" and one.get("device") == "meta" and one.get("shape") == (3, 2),
           f"to_device(X, device) should return X moved to that device; it returned {_in_words(one)}. "
           "Tensor.to returns a new tensor: return it, and use the device argument.")
    for key, kind in (("pair", "list"), ("tuple", "tuple")):
        value = out[key]
        items = value.get("items")
        expect(items is not None and len(items) == 2
               and all(i.get("type") == "tensor" and i.get("device") == "meta" for i in items),
               f"to_device on a {kind} (X, y) should return a {kind} of both tensors moved to the device; it "
               f"returned {_in_words(value)}.")
    nested = out["nested"]
    ok = (nested.get("items") is not None and len(nested["items"]) == 2
          and (nested["items"][0].get("items") or [{}])[0].get("device") == "meta"
          and all(i.get("device") == "meta" for i in nested["items"][0].get("items") or [{}])
          and nested["items"][1].get("device") == "meta")
    expect(ok, "to_device on a nested list [[X, y], X] should move every tensor inside (call to_device on each "
           f"item, recursively); it returned {_in_words(nested)}.")
    back = out["back"]
    expect(back is not None, "to_device(X, torch.device('cpu')) should return a tensor.")
    expect_close(back, out["X"], "to_device(X, torch.device('cpu')) for X already on the CPU", rtol=0, atol=0)


@pytest.mark.device_helpers
def test_device_data_loader(student):
    out = student.probe(probe_device_loader, label="`DeviceDataLoader`")
    expect(out["len"] == 3, f"len(DeviceDataLoader(dl, device)) is {out['len']}; it should equal len(dl) = 3 "
           "batches (10 examples in batches of 4).")
    expected = [[((4, 1, 28, 28), "meta"), ((4,), "meta")], [((4, 1, 28, 28), "meta"), ((4,), "meta")],
                [((2, 1, 28, 28), "meta"), ((2,), "meta")]]
    for number_, batches in enumerate(out["passes"], start=1):
        expect(len(batches) == 3,
               f"Pass {number_} over a DeviceDataLoader gave {len(batches)} batches instead of 3: __iter__ should "
               "start a fresh pass over the wrapped loader every time it is called.")
        devices = sorted({d for batch in batches for item in batch if item for _, d in [item]})
        expect(batches == expected,
               "DeviceDataLoader should yield each batch (X, y) of the wrapped loader (the last one holds 2 "
               f"examples) moved to its device; the batches were on {', '.join(devices) or 'no device'} instead "
               "of the device it was given, or had other shapes. Use the tensors that to_device returns.")
    expect("train_error" not in out,
           f"A model trained on the batches of your DeviceDataLoader failed: {out.get('train_error')}.")
    grads = out["grads"]
    expect(all(isinstance(g, torch.Tensor) and g.device.type == "meta" for g in grads),
           "A model trained on the batches of your DeviceDataLoader got no gradients on the device of its "
           "parameters: yield the batches that to_device returns.")


# ---------------------------------------------------------------------------------------- loss_batch
def _describe(value):
    """A value a probe returned (``raw``: None, numbers, tensors, numpy scalars, type names) as a plain
    description: {"kind": none / int / float / tensor / tensor-int / other, "value": float or None, "type"}."""
    if value is None:
        return {"kind": "none", "value": None, "type": "NoneType"}
    if isinstance(value, bool):
        return {"kind": "other", "value": None, "type": "bool"}
    if isinstance(value, int):
        return {"kind": "int", "value": float(value), "type": "int"}
    if isinstance(value, float):
        return {"kind": "float", "value": value, "type": "float"}
    if isinstance(value, torch.Tensor):
        if value.numel() == 1 and value.device.type != "meta" and not value.is_complex():
            integral = not value.is_floating_point()
            return {"kind": "tensor-int" if integral else "tensor", "value": float(value), "type": "tensor"}
        return {"kind": "other", "value": None, "type": f"tensor of shape {tuple(value.shape)}"}
    if isinstance(value, dict) and "numpy" in value:
        number_ = value.get("value")
        if isinstance(number_, (int, float)) and not isinstance(number_, bool):
            return {"kind": "int" if isinstance(number_, int) else "float", "value": float(number_),
                    "type": str(value["numpy"])}
        return {"kind": "other", "value": None, "type": str(value["numpy"])}
    return {"kind": "other", "value": None, "type": str(value.get("type")) if isinstance(value, dict) else "?"}


def _margin_loss(y_hat, y):
    """The loss given to loss_batch, evaluate and fit (not cross-entropy)."""
    return F.multi_margin_loss(y_hat, y)


def _true_class_prob(y_hat, y):
    """The metric given to loss_batch, evaluate and fit (not accuracy)."""
    return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()


ACCURACY_SCORES = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.5], [0.1, 0.2, 0.3, 0.4],
                                [5.0, -5.0, 0.0, 0.0], [0.0, 0.0, 9.0, 1.0], [1.0, 2.0, 3.0, 0.0],
                                [0.3, 0.2, 0.1, 0.0], [-1.0, -2.0, -3.0, -0.5]])
ACCURACY_LABELS = torch.tensor([0, 1, 3, 1, 2, 0, 0, 2])            # 5 of 8 correct
LOSS_BATCH_LR = 0.5


def _linear_start(generator, fan_in=4, fan_out=3):
    """Parameters of an nn.Linear(fan_in, fan_out) drawn by the judge (its state_dict)."""
    bound = 1 / math.sqrt(fan_in)
    return {"weight": (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound,
            "bias": (torch.rand(fan_out, generator=generator) * 2 - 1) * bound}


@pytest.fixture(scope="module")
def loss_batch_case():
    """The judge's parameters and batch, and its replay: the loss and metric before each of two SGD steps."""
    gen = torch.Generator().manual_seed(_seed(2))
    start = _linear_start(gen)
    X, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2])
    W, b = (start[k].clone().requires_grad_(True) for k in ("weight", "bias"))
    optimizer = torch.optim.SGD([W, b], lr=LOSS_BATCH_LR)
    losses, metrics = [], []
    for _ in range(2):
        y_hat = F.linear(X, W, b)
        loss = _margin_loss(y_hat, y)
        losses.append(loss.item())
        metrics.append(_true_class_prob(y_hat.detach(), y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"start": start, "X": X, "y": y, "losses": losses, "metrics": metrics,
            "after_steps": {"weight": W.detach(), "bias": b.detach()}}


@pytest.fixture(scope="module")
def loss_batch_out(student, loss_batch_case):
    case = loss_batch_case
    return student.probe(probe_loss_batch, case["start"], case["X"], case["y"], ACCURACY_SCORES, ACCURACY_LABELS,
                         LOSS_BATCH_LR, label="`accuracy` / `loss_batch`")


@pytest.mark.loss_batch
def test_accuracy_values(loss_batch_out):
    out = loss_batch_out
    for key, want, what in (("acc_logits", 0.625, "logits with 5 of 8 rows correct"),
                            ("acc_logprobs", 0.625, "log-probabilities with 5 of 8 rows correct"),
                            ("acc_probs", 0.8, "probabilities with 4 of 5 rows correct"),
                            ("acc_single", 0.0, "a single row that is wrong")):
        value = _describe(out[key])
        expect(value["kind"] == "float",
               f"accuracy(y_hat, y) should return a Python float (use .item()); for {what} it returned "
               f"{'a tensor' if value['kind'].startswith('tensor') else 'a ' + value['type']}.")
        expect_close(value["value"], want, f"accuracy(y_hat, y) for {what}", rtol=0, atol=1e-6)


def _triple(returned, call):
    """The (loss, n, value) descriptions of what loss_batch returned, or a failure saying what it returned."""
    items = returned["items"]
    expect(items is not None and len(items) == 3,
           f"{call} should return a tuple (loss, n, metric value); it returned a {returned['type']}"
           f"{' of length ' + str(len(items)) if items is not None else ''}.")
    return [_describe(item) for item in items]


@pytest.mark.loss_batch
def test_loss_batch_without_optimizer(loss_batch_out, loss_batch_case):
    out, case = loss_batch_out, loss_batch_case
    loss, n, value = _triple(out["plain"], "loss_batch")
    expect(loss["kind"] in ("float", "int"),
           f"loss_batch should return the loss as a Python float (loss.item()), not "
           f"{'a tensor' if loss['kind'].startswith('tensor') else 'a ' + loss['type']}: a tensor keeps its "
           "computation graph alive for as long as it is stored.")
    expect(n["kind"] in ("int", "tensor-int") and n["value"] == 6,
           f"loss_batch should return n = 6 (the batch size) for a batch of 6 examples; it returned "
           f"{number(n, 'a value')}.")
    expect_close(loss["value"], case["losses"][0], "the loss returned by loss_batch, computed with the loss_fn it "
                 "is given (here not cross-entropy)", rtol=1e-5, atol=1e-6)
    expect(value["kind"] == "none", "Without a metric, loss_batch should return None as its third value.")
    for key, got in out["after_plain"].items():
        expect(key in case["start"] and torch.equal(got, case["start"][key]),
               "loss_batch without an optimizer must not change the model's parameters (after two calls they "
               "differ from before; compared exactly): step only when an optimizer is given.")
    metric = _triple(out["with_metric"], "loss_batch with a metric")[2]
    expect(metric["value"] is not None, "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
    expect_close(metric["value"], case["metrics"][0], "the metric value returned by loss_batch, computed with "
                 "the metric it is given (here not accuracy)", rtol=1e-5, atol=1e-6)


@pytest.mark.loss_batch
def test_loss_batch_with_optimizer(loss_batch_out, loss_batch_case):
    out, case = loss_batch_out, loss_batch_case
    for i, (returned, loss, value) in enumerate(zip(out["steps"], case["losses"], case["metrics"]), 1):
        got_loss, _, got_value = _triple(returned, "loss_batch with an optimizer")
        expect(got_loss["value"] is not None, "loss_batch should return the loss as a number.")
        expect_close(got_loss["value"], loss, f"the loss returned by call {i} of loss_batch with an optimizer "
                     "(the loss before that step)", rtol=1e-5, atol=1e-6)
        expect(got_value["value"] is not None,
               "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
        expect_close(got_value["value"], value, f"the metric value returned by call {i} (computed on the "
                     "predictions before the step)", rtol=1e-5, atol=1e-6)
    for key, want in case["after_steps"].items():
        expect_close(out["after_steps"].get(key), want, "the parameters after two calls of loss_batch with the SGD "
                     "optimizer it is given (one step each: zero_grad, backward, step)", rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- evaluate_loop
EVALUATE_DROPOUT = 0.5


@pytest.fixture(scope="module")
def evaluate_case():
    """The judge's parameters and batches (10, 10 and 3 examples), and per batch the loss, size and metric that
    the stand-in loss_batch returns (the model in eval mode: its linear layer alone)."""
    gen = torch.Generator().manual_seed(_seed(5))
    start = _linear_start(gen)
    X = torch.randn(23, 4, generator=gen)
    X[20:] *= 4                                           # the small last batch differs from the others
    y = torch.randint(0, 3, (23,), generator=gen)
    batches = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    table = []
    for a, b in batches:
        y_hat = F.linear(a, start["weight"], start["bias"])
        table.append({"loss": _margin_loss(y_hat, b).item(), "n": len(a), "metric": _true_class_prob(y_hat, b)})
    expected = {"loss": sum(r["loss"] * r["n"] for r in table) / 23,
                "metric": sum(r["metric"] * r["n"] for r in table) / 23,
                "unweighted_loss": sum(r["loss"] for r in table) / 3,
                "unweighted_metric": sum(r["metric"] for r in table) / 3}
    return {"start": start, "batches": batches, "table": table, "expected": expected}


@pytest.fixture(scope="module")
def evaluate_out(student, evaluate_case):
    case = evaluate_case
    return student.probe(probe_evaluate, case["start"], case["batches"], case["table"], EVALUATE_DROPOUT,
                         label="`evaluate`")


@pytest.mark.evaluate_loop
def test_evaluate_mode_and_no_grad(evaluate_out, evaluate_case):
    seen = evaluate_out["seen"]
    expect(len(seen) >= 6, f"evaluate ran the model on {len(seen)} batches in two calls on data_iter's 3 batches; "
           "it should run it on every batch.")
    W, b = evaluate_case["start"]["weight"].double(), evaluate_case["start"]["bias"].double()
    for X, y_hat in seen:
        want = F.linear(X.double(), W, b)
        expect(tuple(y_hat.shape) == tuple(want.shape) and torch.allclose(y_hat.double(), want, rtol=1e-5, atol=1e-6),
               "evaluate ran the model in training mode: call net.eval() first (dropout and batch norm "
               "behave differently when predicting; the model's outputs differ from its eval-mode outputs by more "
               "than 1e-5).")
    expect(all(grad is None for grad in evaluate_out["grads"]),
           "evaluate ran the model with gradients enabled (a backward through its outputs reaches the weights): "
           "wrap the loop in torch.no_grad().")


@pytest.mark.evaluate_loop
def test_evaluate_weighted_means(evaluate_out, evaluate_case):
    result, expected = evaluate_out["result"], evaluate_case["expected"]
    expect("__type__" not in result and {"loss", "metric", "n"} <= set(result),
           "evaluate should return a dict with the keys 'loss', 'metric' and 'n'"
           f"{'; it returned a ' + result['__type__'] if '__type__' in result else ''}.")
    n = _describe(result["n"])
    expect(n["kind"] in ("int", "tensor-int"),
           f"evaluate's 'n' should be the number of examples, an integer; it is {number(n, 'a value')}.")
    expect(n["value"] == 23, f"evaluate returned n = {n['value']:g} for 23 examples in batches of 10, 10 and 3.")
    loss = _describe(result["loss"])
    expect(loss["kind"] in ("float", "int"),
           f"evaluate's 'loss' should be a Python number (a mean of the floats loss_batch returns), not "
           f"{'a tensor' if loss['kind'].startswith('tensor') else 'a ' + loss['type']}.")
    expect(loss["value"] == loss["value"],
           "evaluate's 'loss' does not come from the loss_fn it is given (here not cross-entropy): pass it on "
           "to loss_batch.")
    if abs(loss["value"] - expected["unweighted_loss"]) < 1e-6:
        fail("evaluate averaged the loss over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(loss["value"], expected["loss"], "the mean loss returned by evaluate (batches of 10, 10 and 3 "
                 "examples, weighted by batch size; computed with the loss_fn it is given)", rtol=1e-5, atol=1e-6)
    metric = _describe(result["metric"])
    expect(metric["kind"] in ("float", "int"),
           f"evaluate's 'metric' should be a Python number when a metric is given, not "
           f"{'a tensor' if metric['kind'].startswith('tensor') else 'None' if metric['kind'] == 'none' else 'a ' + metric['type']}.")
    expect(metric["value"] == metric["value"],
           "evaluate's 'metric' does not come from the metric it is given (here not accuracy): pass that metric "
           "on to loss_batch.")
    if abs(metric["value"] - expected["unweighted_metric"]) < 1e-6:
        fail("evaluate averaged the metric over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(metric["value"], expected["metric"], "the mean metric returned by evaluate (weighted by batch size; "
                 "computed with the metric it is given, here not accuracy)", rtol=1e-5, atol=1e-6)
    none = evaluate_out["result_none"]
    expect("__type__" not in none and "metric" in none and none["metric"] is None,
           "Without a metric, evaluate should return None under 'metric'.")


# ------------------------------------------------------------------------------------------ fit_loop
FIT_LR, FIT_EPOCHS = 0.3, 3


def _fit_model():
    """Linear(4, 3) then BatchNorm1d(3): in train mode batch norm normalises with the batch's statistics and
    updates its running ones, so the state after fit shows in which mode every training batch ran."""
    with torch.random.fork_rng(devices=[]):
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


@pytest.fixture(scope="module")
def fit_case():
    """The judge's parameters and batches, and its replay of fit: the numbers its stand-ins return, the
    history and the state_dict after training."""
    gen = torch.Generator().manual_seed(_seed(3))
    X = torch.randn(23, 4, generator=gen)
    y = torch.randint(0, 3, (23,), generator=gen)
    train_batches = [(X[:5], y[:5]), (X[5:10], y[5:10]), (X[10:13], y[10:13])]
    valid_batches = [(X[13:17], y[13:17]), (X[17:21], y[17:21])]
    net = _fit_model()
    start = {**_linear_start(gen), "1.weight": 1 + 0.2 * torch.rand(3, generator=gen),
             "1.bias": 0.2 * torch.randn(3, generator=gen)}
    start = {(k if "." in k else f"0.{k}"): v for k, v in start.items()}
    net.load_state_dict({**net.state_dict(), **start})
    start = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=FIT_LR)
    train_table, valid_table = [], []
    expected = {"train_loss": [], "valid_loss": [], "valid_metric": [], "unweighted_train_loss": []}
    for _ in range(FIT_EPOCHS):
        net.train()
        losses = []
        for a, b in train_batches:
            optimizer.zero_grad()
            loss = _margin_loss(net(a), b)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            train_table.append({"loss": loss.item(), "n": len(a)})
        sizes = [len(a) for a, _ in train_batches]
        expected["train_loss"].append(sum(l * n for l, n in zip(losses, sizes)) / sum(sizes))
        expected["unweighted_train_loss"].append(sum(losses) / len(losses))
        net.eval()
        with torch.no_grad():
            outs = [(net(a), b) for a, b in valid_batches]
        total = sum(len(b) for _, b in outs)
        row = {"loss": sum(_margin_loss(o, b).item() * len(b) for o, b in outs) / total,
               "metric": sum(_true_class_prob(o, b) * len(b) for o, b in outs) / total}
        valid_table.append(row)
        expected["valid_loss"].append(row["loss"])
        expected["valid_metric"].append(row["metric"])
    return {"start": start, "train_batches": train_batches, "valid_batches": valid_batches,
            "train_table": train_table, "valid_table": valid_table, "expected": expected,
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


@pytest.fixture(scope="module")
def fit_out(student, fit_case):
    case = fit_case
    return {"runs": student.probe(probe_fit, case["start"], case["train_batches"], case["valid_batches"],
                                  case["train_table"], case["valid_table"], FIT_LR, FIT_EPOCHS, label="`fit`"),
            "expected": case["expected"], "state": case["state"]}


@pytest.mark.fit_loop
def test_fit_trains_in_train_mode(fit_out):
    tracked = int(fit_out["runs"]["main"]["state"]["1.num_batches_tracked"])
    expect(tracked >= 9, f"fit trained the model in eval mode for {9 - tracked} of its 9 training batches (3 "
           "epochs of 3): call net.train() at the start of every epoch (evaluate leaves the model in eval mode, "
           "and the model may start in it).")
    expect(tracked == 9, f"fit ran the model in train mode on {tracked} batches; 3 epochs of 3 training batches "
           "are 9.")


def _check_history(history, expected, keys, call):
    """The history of one fit call against the judge's replay."""
    expect("__type__" not in history, f"{call} should return the history as a dict, not a "
           f"{history.get('__type__')}.")
    epochs = history.get("epoch")
    expect(epochs is not None and epochs["items"] is not None,
           f"The history returned by {call} should hold the list 'epoch'.")
    kinds = [_describe(i) for i in epochs["items"]]
    for item in kinds if call == "fit" else ():
        expect(item["kind"] in ("int", "float"), f"history['epoch'] returned by {call} should hold Python numbers "
               f"(1, 2, ...), not {'tensors' if item['kind'].startswith('tensor') else 'a ' + item['type']}.")
    values = [item["value"] for item in kinds]
    expect(values == [1.0, 2.0, 3.0], f"history['epoch'] returned by {call} is "
           f"[{', '.join('?' if v is None else f'{v:g}' for v in values)}]; it should be [1, 2, 3] (epochs count "
           "from 1).")
    for key in keys:
        expect(key in history, f"The history returned by {call} has no key '{key}'.")
        entry = history[key]
        expect(entry["items"] is not None and len(entry["items"]) == 3,
               f"history['{key}'] should be a list with one value per epoch (3 epochs).")
        items = [_describe(i) for i in entry["items"]]
        for item in items:
            if item["kind"].startswith("tensor"):
                fail(f"history['{key}'] holds tensors: store Python floats (loss.item()); a loss tensor kept in the "
                     "history keeps its whole computation graph alive.")
            expect(item["kind"] in ("float", "int"), f"history['{key}'] should hold Python numbers, not "
                   f"{'None' if item['kind'] == 'none' else 'a ' + item['type']}.")
        got = [i["value"] for i in items]
        expect(all(g == g for g in got), f"history['{key}'] returned by {call} does not come from the "
               f"{'metric' if key == 'valid_metric' else 'loss'} fit is given (here not "
               f"{'accuracy' if key == 'valid_metric' else 'cross-entropy'}): pass it on to loss_batch and evaluate.")
        if key == "train_loss" and all(abs(g - u) < 1e-7 for g, u in zip(got, expected["unweighted_train_loss"])):
            fail("history['train_loss'] is the plain mean of the batch losses: weight each batch's loss by its "
                 "size (the last batch of an epoch holds 3 examples, the others 5).")
        expect_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected[key], dtype=torch.float64),
                     f"history['{key}'] returned by {call} (per epoch; the training loss weighted by batch size; "
                     "computed with the loss and metric fit is given)", rtol=1e-4, atol=1e-6)


def _check_state(state, want, call):
    """The model's parameters and batch-norm statistics after ``call`` against the judge's replay."""
    for key, value in want.items():
        expect_close(state[key].double(), value.double(), f"the parameters after {call} (3 epochs, one step of the "
                     "optimizer it is given per training batch, in train mode)", rtol=1e-4, atol=1e-6)


@pytest.mark.fit_loop
def test_fit_history(fit_out):
    _check_history(fit_out["runs"]["main"]["history"], fit_out["expected"],
                   ("train_loss", "valid_loss", "valid_metric"), "fit")


@pytest.mark.fit_loop
def test_fit_parameters(fit_out):
    _check_state(fit_out["runs"]["main"]["state"], fit_out["state"], "fit")


@pytest.mark.fit_loop
def test_fit_without_validation(fit_out):
    runs = fit_out["runs"]
    for name, call, keys in (("no_valid", "fit(..., valid_iter=None)", ("train_loss",)),
                             ("progress", "fit(..., progress=True)", ("train_loss", "valid_loss", "valid_metric"))):
        run = runs[name]
        expect("error" not in run, f"{call} raised {run.get('error')}"
               f"{': evaluate only when valid_iter is given' if name == 'no_valid' else ''}.")
        _check_history(run["history"], fit_out["expected"], keys, call)
        _check_state(run["state"], fit_out["state"], call)


# ------------------------------------------------------------------------------------- custom_layer
@pytest.fixture(scope="module")
def custom_layer_out(student):
    return student.probe(probe_custom_layer, _seed(0), label="`MyLinear`")


@pytest.mark.custom_layer
def test_custom_layer_parameters(custom_layer_out):
    out = custom_layer_out
    expect("error" not in out, "MyLinear(5, 3) should be an nn.Module (subclass nn.Module and call "
           f"super().__init__()): calling its named_parameters() and state_dict() raised {out.get('error')}.")
    attr = out["attr"]
    for name in ("weight", "bias"):
        expect(attr[name] is not None, f"MyLinear(5, 3) has no attribute `{name}`.")
        expect(name in out["names"],
               f"MyLinear's `{name}` is a plain {'tensor' if isinstance(attr[name], torch.Tensor) else attr[name]}, "
               "not an nn.Parameter: it is not registered, so it is missing from parameters() (the optimiser never "
               f"updates it), from state_dict() and from .to(device). Wrap it: self.{name} = nn.Parameter(...).")
    expect(out["names"] == ["bias", "weight"],
           f"MyLinear(5, 3) should register exactly the parameters weight and bias; named_parameters() gives "
           f"{', '.join(out['names']) or 'none'}.")
    expect(out["state_keys"] == ["bias", "weight"],
           f"MyLinear(5, 3).state_dict() should hold weight and bias; it holds {', '.join(out['state_keys']) or 'nothing'}.")
    expect(out["shapes"] == {"weight": (5, 3), "bias": (3,)},
           f"MyLinear(5, 3) should have weight of shape (5, 3) (in_features, out_features) and bias of shape (3,); "
           f"they are {out['shapes'].get('weight')} and {out['shapes'].get('bias')}.")
    moved = out["moved"]
    expect(sorted(moved) == ["bias", "weight"] and all(v.device.type == "meta" for v in moved.values()),
           "MyLinear(5, 3).to(device) should move weight and bias to the device.")
    expect(out["sequential_params"] == 4 * 8 + 8 + 8 * 2 + 2 and out["sequential_shape"] == (3, 2),
           "nn.Sequential(MyLinear(4, 8), nn.ReLU(), MyLinear(8, 2)) should have 58 parameters and map (3, 4) to "
           f"(3, 2); it has {out['sequential_params']} and gives {out['sequential_shape']}.")


@pytest.mark.custom_layer
def test_custom_layer_forward(custom_layer_out):
    out = custom_layer_out
    expect("cases" in out, "MyLinear needs the parameters weight and bias (see the other message).")
    for case in out["cases"]:
        n, fan_in = case["X"].shape
        fan_out = case["R"].shape[1]
        what = f"MyLinear({fan_in}, {fan_out}) applied to X of shape ({n}, {fan_in})"
        expect(tuple(case["W"].shape) == (fan_in, fan_out) and tuple(case["b"].shape) == (fan_out,),
               f"MyLinear({fan_in}, {fan_out}) should have weight of shape ({fan_in}, {fan_out}) (in_features, "
               f"out_features), so that forward computes X @ weight + bias, and bias of shape ({fan_out},); they "
               f"have shapes {tuple(case['W'].shape)} and {tuple(case['b'].shape)}.")
        y_hat = expect_tensor(case["y_hat"], what, shape=(n, fan_out), dtype=torch.float32)
        X, W, b = case["X"].double(), case["W"].double(), case["b"].double()
        expect_close(y_hat, X @ W + b, f"{what} (X @ weight + bias)", rtol=1e-5, atol=1e-5)
        expect("backward_error" not in case and case["W_grad"] is not None and case["b_grad"] is not None,
               f"No gradient reaches weight and bias through the output of {what}"
               f"{' (backward raised ' + case['backward_error'] + ')' if 'backward_error' in case else ''}: "
               "it is cut off from them, so training cannot change them. Use self.weight and self.bias themselves "
               "in forward (not self.weight.data or a detached copy).")
        for name, grad, want in (("weight", case["W_grad"], X.T @ case["R"].double()),
                                 ("bias", case["b_grad"], case["R"].double().sum(0))):
            expect_close(grad, want, f"the gradient of {name} after backward through {what}", rtol=1e-5, atol=1e-5)


@pytest.mark.custom_layer
def test_custom_layer_initialisation(custom_layer_out):
    out = custom_layer_out
    expect("init" in out, "MyLinear needs the parameters weight and bias (see the other message).")
    init = out["init"]
    expect(init["shape"] == (1000, 400), f"MyLinear(1000, 400).weight should have shape (1000, 400), not {init['shape']}.")
    expect(abs(init["std"] - 0.01) <= 0.0005 and abs(init["mean"]) <= 0.0002,
           f"MyLinear(1000, 400).weight has mean {init['mean']:.3g} and standard deviation {init['std']:.3g}; "
           "weights drawn from N(0, 0.01^2) have mean 0 (tolerance 2e-4) and standard deviation 0.01 (tolerance "
           "5e-4): torch.randn(in_features, out_features) * 0.01.")
    expect(0.035 <= init["beyond_2std"] <= 0.056,
           f"{init['beyond_2std']:.1%} of MyLinear(1000, 400)'s weights are beyond 2 standard deviations; a normal "
           "distribution puts 4.6% there (accepted 3.5%-5.6%): draw them with torch.randn.")
    expect(init["bias_max"] == 0, f"MyLinear's bias should start at zero; its largest entry is {init['bias_max']:.3g}.")


# --------------------------------------------------------------------------------------- init_apply
@pytest.fixture(scope="module")
def init_others():
    """Values of the layers that are not nn.Linear (by module name), drawn by the judge away from the defaults."""
    gen = torch.Generator().manual_seed(_seed(17))
    return {"0.2": {"weight": 0.5 + torch.rand(400, generator=gen), "bias": torch.rand(400, generator=gen) - 0.5},
            "2": {"weight": torch.randn(8, 3, 5, 5, generator=gen) * 0.1, "bias": torch.randn(8, generator=gen)},
            "3": {"weight": 0.5 + torch.rand(1500, generator=gen), "bias": torch.rand(1500, generator=gen) - 0.5,
                  "running_mean": torch.randn(1500, generator=gen),
                  "running_var": 0.5 + torch.rand(1500, generator=gen), "num_batches_tracked": torch.tensor(7)}}


@pytest.fixture(scope="module")
def init_out(student, init_others):
    return student.probe(probe_init_apply, _seed(0), init_others, label="`init_weights`")


def _init_error(out):
    if "error" in out:
        fail(f"net.apply(init_weights) raised {out['error']}. apply calls init_weights on every module (ReLU, "
             "containers, normalisation layers, Linear layers without bias): act on nn.Linear only, and zero "
             "the bias only when it is not None.")


@pytest.mark.init_apply
def test_init_linear_weights(init_out):
    _init_error(init_out)
    for layer in init_out["linears"]:
        fan_in, fan_out = layer["fan_in"], layer["fan_out"]
        a = math.sqrt(6 / (fan_in + fan_out))
        what = f"nn.Linear({fan_in}, {fan_out}) (inside nested nn.Sequential) after net.apply(init_weights)"
        expect(-a * (1 + 1e-6) <= layer["min"] and layer["max"] <= a * (1 + 1e-6),
               f"The weights of {what} range from {layer['min']:.4g} to {layer['max']:.4g}; Xavier-uniform weights "
               f"lie in [-a, a] with a = sqrt(6 / (fan_in + fan_out)) = {a:.4g}: nn.init.xavier_uniform_(m.weight).")
        std = a / math.sqrt(3)
        expect(abs(layer["std"] - std) <= 0.03 * std and abs(layer["mean"]) <= 0.02 * a
               and layer["max"] >= 0.95 * a and layer["min"] <= -0.95 * a,
               f"The weights of {what} have standard deviation {layer['std']:.4g} and range "
               f"[{layer['min']:.4g}, {layer['max']:.4g}]; Xavier-uniform gives {std:.4g} (tolerance 3%) and fills "
               f"[-{a:.4g}, {a:.4g}]: nn.init.xavier_uniform_(m.weight).")


@pytest.mark.init_apply
def test_init_linear_biases(init_out):
    _init_error(init_out)
    for layer in init_out["linears"]:
        if layer["bias_max"] is not None:
            expect(layer["bias_max"] == 0,
                   f"The bias of nn.Linear({layer['fan_in']}, {layer['fan_out']}) after net.apply(init_weights) has "
                   f"entries up to {layer['bias_max']:.3g}; it should be all zeros: nn.init.zeros_(m.bias).")


@pytest.mark.init_apply
def test_init_leaves_other_modules(init_out, init_others):
    _init_error(init_out)
    after = init_out["others"]
    changed = [name for name, state in init_others.items()
               if set(after[name]) != set(state) or not all(torch.equal(after[name][k], v) for k, v in state.items())]
    expect(not changed, "net.apply(init_weights) changed the parameters of layers that are not nn.Linear "
           f"({len(changed)} of them: a Conv2d and normalisation layers). Initialise nn.Linear modules only: "
           "check isinstance(m, nn.Linear) (or type(m) == nn.Linear).")


# ------------------------------------------------------------------------------------- shared_layer
SHARED_SIZES = [(6, 5, 2, 4), (3, 8, 1, 1)]


@pytest.fixture(scope="module")
def shared_out(student):
    return [student.probe(probe_shared_layer, _seed(0), sizes, label="`make_shared_net`") for sizes in SHARED_SIZES]


@pytest.mark.shared_layer
def test_shared_net_structure(shared_out):
    for out, (i, h, o, _) in zip(shared_out, SHARED_SIZES):
        call = f"make_shared_net({i}, {h}, {o})"
        expect("error" not in out, f"{call} should return an nn.Module (e.g. an nn.Sequential); it returned a "
               f"{out.get('type')}, whose parameters() and modules() raised {out.get('error')}.")
        expected = i * h + h + h * h + h + h * o + o
        expect(out["n_params"] == expected and out["n_tensors"] == 6,
               f"{call} has {out['n_params']} parameters in {out['n_tensors']} tensors; Linear({i}, {h}), one shared "
               f"Linear({h}, {h}) used twice and Linear({h}, {o}) have {expected} in 6 tensors: the shared layer's "
               "parameters count once. Create the shared layer once and put that same object in the network twice "
               "(a copy, or a second nn.Linear with the same values, is a different layer).")
        calls, linears = out["calls"], out["linears"]
        uses = [(linears[c]["weight"], linears[c]["bias"]) for c in calls]
        expect(len(calls) == 4 and uses[1] == uses[2] and len(set(uses)) == 3,
               f"In {call}'s forward, nn.Linear layers ran {len(calls)} times with {len(set(uses))} different sets "
               "of parameters; expected 4 runs: the first layer, the shared layer twice, the output layer.")


@pytest.mark.shared_layer
def test_shared_net_forward_and_gradients(shared_out):
    for out, (i, h, o, n) in zip(shared_out, SHARED_SIZES):
        call = f"make_shared_net({i}, {h}, {o})"
        expect("error" not in out and len(out["calls"]) == 4,
               f"{call} should run 4 linear layers (see the other message).")
        y_hat = expect_tensor(out["y_hat"], f"{call} applied to X of shape ({n}, {i})", shape=(n, o))
        values = [v.double().clone().requires_grad_(True) for v in out["values"]]
        h_ = out["X"].double()
        for step, c in enumerate(out["calls"]):
            layer = out["linears"][c]
            expect(layer["weight"] is not None and layer["bias"] is not None,
                   f"Every linear layer of {call} should have a registered weight and bias.")
            W, b = values[layer["weight"]], values[layer["bias"]]
            expect(W.shape[1] == h_.shape[1] and b.shape == (W.shape[0],),
                   f"The linear layers of {call} do not fit together: layer {step + 1} has weight of shape "
                   f"{tuple(W.shape)} for inputs of {h_.shape[1]} features. Use Linear({i}, {h}), the shared "
                   f"Linear({h}, {h}) twice, then Linear({h}, {o}).")
            h_ = h_ @ W.T + b
            if step < 3:
                h_ = torch.relu(h_)
        expect_close(y_hat, h_.detach(), f"the output of {call} (Linear, ReLU, shared, ReLU, shared, ReLU, Linear)",
                     rtol=1e-5, atol=1e-5)
        (h_ * out["R"].double()).sum().backward()
        for k, (got, value) in enumerate(zip(out["grads"], values)):
            expect(got is not None, f"After backward through {call}, a parameter has no gradient.")
            expect_close(got, value.grad, f"the gradients of {call}'s parameters (the shared layer's is the sum "
                         "over both of its uses)", rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------- save_load_params
SAVE_LOAD_FILES = {"mlp": "mlp.params", "small": "small-net.pt"}
SAVE_LOAD_SHIFT = 0.25


@pytest.fixture(scope="module")
def save_load_case():
    """The judge's two networks (their state_dicts: the MLP's batch-norm statistics moved away from the defaults)
    and the input X."""
    gen = torch.Generator().manual_seed(_seed(13))
    X = torch.randn(7, 6, generator=gen)
    states = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(0))
        mlp = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                  torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
        with torch.no_grad():
            for _ in range(3):
                mlp(X * 2 + 1)
        small = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    for name, net in (("mlp", mlp), ("small", small)):
        net.eval()
        with torch.no_grad():
            expected = net(X)
        states[name] = {"state": {k: v.detach().clone() for k, v in net.state_dict().items()}, "expected": expected}
    return {"X": X, "states": states}


@pytest.fixture(scope="module")
def save_load_out(student, save_load_case):
    case = save_load_case
    return student.probe(probe_save_load, {k: v["state"] for k, v in case["states"].items()}, case["X"],
                         SAVE_LOAD_SHIFT, _seed(1), label="`save_params` / `load_params`")


def _read_state(content):
    """The file's bytes read here with torch.load (tensors only): the object, or the error it raised."""
    import io
    try:
        return torch.load(io.BytesIO(content.numpy().tobytes()), weights_only=True, map_location="cpu"), None
    except Exception as exc:
        return None, type(exc).__name__


@pytest.mark.save_load_params
def test_save_params_writes_state_dict(save_load_out, save_load_case):
    for name, case in save_load_out.items():
        state = save_load_case["states"][name]["state"]
        filename = SAVE_LOAD_FILES[name]
        expect(filename in case["files"],
               "save_params(net, path) wrote no file at path: torch.save(net.state_dict(), path).")
        saved, error = _read_state(case["files"][filename])
        expect(error is None, "The file written by save_params could not be read as a state_dict with torch.load "
               f"(it raised {error}): save net.state_dict(), a dict of tensors, not the network object.")
        keys = sorted(saved) if isinstance(saved, dict) else None
        same = keys == sorted(state) and all(
            isinstance(saved[k], torch.Tensor) and saved[k].shape == v.shape and torch.equal(saved[k], v)
            for k, v in state.items())
        expect(same,
               "The file written by save_params should hold net.state_dict(): a dict with the keys "
               f"{', '.join(sorted(state))} and the network's current tensors; it holds "
               f"{'the keys ' + ', '.join(str(k) for k in keys) if keys is not None else 'a ' + type(saved).__name__}"
               " (or other values).")


@pytest.mark.save_load_params
def test_load_params_reproduces(save_load_out, save_load_case):
    for name, case in save_load_out.items():
        expected = save_load_case["states"][name]["expected"]
        expect("load_error" not in case, f"load_params(make_net, path) raised {case.get('load_error')}. Build the "
               "network with the make_net it is given, then net.load_state_dict(torch.load(path)) with the "
               "state_dict that save_params wrote.")
        expect("pred_error" not in case, f"load_params(make_net, path) should return the network (an nn.Module); "
               f"it returned a {case.get('loaded_type')}, and calling it raised {case.get('pred_error')}.")
        original = expect_tensor(case["original"], "the saved network's output", shape=tuple(expected.shape))
        expect_close(original, expected, "the output of the network given to save_params (save_params should "
                     "leave it as it is)", rtol=1e-5, atol=1e-6)
        pred = expect_tensor(case["pred"], "the loaded network's output", shape=tuple(expected.shape))
        again = case["pred_again"]
        if not torch.equal(pred, original):
            if not (isinstance(again, torch.Tensor) and torch.equal(again, pred)):
                fail("The network returned by load_params is in training mode, so dropout and batch norm change "
                     "its predictions: call net.eval() before returning it.")
            fail("The network returned by load_params does not reproduce the saved network's predictions exactly "
                 "(compared with torch.equal): build it with the make_net it is given, then "
                 "net.load_state_dict(torch.load(path)).")
        expect(isinstance(again, torch.Tensor) and torch.equal(again, pred),
               "The network returned by load_params gives different predictions for the same input: return it in "
               "evaluation mode (net.eval()).")
        after = case["pred_after_shift"]
        expect(isinstance(after, torch.Tensor) and torch.equal(after, pred),
               "The network returned by load_params changes when the network that was saved is changed: it is that "
               "same object, not a new network. Build a new one with make_net(), then load the saved state_dict "
               "into it.")
