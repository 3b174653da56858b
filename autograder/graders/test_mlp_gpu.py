"""Graders for 06-mlp-gpu: device helpers, loss_batch / evaluate / fit, an MNIST MLP, and the inside of
nn.Module (a custom layer, initialisation with apply, a shared layer, saving and loading parameters).

One mistake costs one task: where a task's function calls another graded function of the notebook
(``evaluate`` and ``fit`` call ``loss_batch`` and ``evaluate``), the probe swaps a correct version in for
the duration of the call. The model of ``mnist_mlp`` is trained by the probe's own plain SGD loop (not
the student's ``fit``), with the student's ``MnistModel`` and ``loss_fn``.

Given-argument checks: ``loss_batch``, ``evaluate`` and ``fit`` are called with a loss (multi-class
margin loss) and a metric (mean probability of the true class) that differ from ``F.cross_entropy`` and
``accuracy``, so a function that calls its own loss or metric by name instead of the ones it is given
fails. ``load_params`` is given a network factory that is not the notebook's ``MnistModel``.

Accuracy (task mnist_mlp): the judge loads the MNIST test split (``course.data.mnist_test_split_tensors``,
seed 0: 8,000 training and 2,000 held-out images; a missing data file is a fault of the course and
propagates as DataNotFoundError). It sends the training images and labels, and the held-out images
normalised and disguised with ``autograder.heldout.disguise`` under a secret drawn once per grading;
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

Not enforced (with reasons): see the CONTRACT table below.
"""
import math
import os

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.heldout import disguise, grading_secret
from autograder.tasks import Task
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
        "'epoch' holds 1, 2, ...": "test_fit_history",
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
        "no softmax before cross_entropy": ["test_mlp_loss", "test_mlp_trains_to_accuracy"],
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
def probe_mlp_structure(ns, seed):
    """Shapes, parameters, per-image independence, nonlinearity, the loss, and a run on the meta device."""
    import copy
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")
    out = {}
    for key, args in (("32", (784, 32, 10)), ("64", (784, 64, 10)), ("small", (196, 20, 4))):
        torch.manual_seed(seed)
        net = MnistModel(*args)
        out[f"module_{key}"] = isinstance(net, torch.nn.Module)
        out[f"params_{key}"] = sum(p.numel() for p in net.parameters()) if out[f"module_{key}"] else -1
    torch.manual_seed(seed)
    default = MnistModel()
    out["params_default"] = sum(p.numel() for p in default.parameters()) \
        if isinstance(default, torch.nn.Module) else -1
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
    # The loss on a batch of 6 and of 9, with the model's own outputs.
    X9 = torch.randn(9, 1, 28, 28, generator=gen)
    y6, y9 = torch.tensor([0, 1, 2, 3, 4, 5]), torch.randint(0, 10, (9,), generator=gen)
    loss = loss_fn(net(X), y6)
    out["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else loss
    out["loss_graph"] = bool(isinstance(loss, torch.Tensor) and loss.requires_grad)
    with torch.no_grad():
        out["y_hat9"] = net(X9)
        out["loss9"] = loss_fn(out["y_hat9"], y9)
    out["y9"] = y9
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
        out["meta"] = {"device": str(y_hat.device), "shape": tuple(y_hat.shape),
                       "grads": all(p.grad is not None and p.grad.device.type == "meta"
                                    for p in meta.parameters())}
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
    """get_default_device() with torch.cuda.is_available reporting True, then False."""
    import torch
    get_default_device = ns.require("get_default_device")
    original = torch.cuda.is_available
    result = {}
    try:
        for flag in (True, False):
            torch.cuda.is_available = lambda flag=flag: flag
            device = get_default_device()
            result[str(flag)] = {"is_device": isinstance(device, torch.device),
                                 "text": str(device) if isinstance(device, (str, torch.device)) else None,
                                 "type": type(device).__name__}
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
        out["train"] = "ok"
    except Exception as exc:
        out["train"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


def probe_loss_batch(ns, seed):
    """accuracy on known scores; loss_batch without and with an optimiser, with a margin loss and a metric."""
    import copy
    import torch
    import torch.nn.functional as F
    accuracy = ns.require("accuracy")
    loss_batch = ns.require("loss_batch")

    def describe(value):
        """(In the student's process.) A plain description of a returned number: kind, value, type name."""
        import numbers
        if isinstance(value, bool) or value is None:
            return {"kind": "none" if value is None else "other", "value": None, "type": type(value).__name__}
        if isinstance(value, torch.Tensor):
            if value.numel() == 1 and value.device.type != "meta":
                integral = not value.is_floating_point() and not value.is_complex()
                return {"kind": "tensor-int" if integral else "tensor", "value": float(value.detach()),
                        "type": "tensor", "graph": bool(value.requires_grad)}
            return {"kind": "other", "value": None, "type": f"tensor of shape {tuple(value.shape)}"}
        if isinstance(value, numbers.Integral):
            return {"kind": "int", "value": float(value), "type": type(value).__name__}
        if isinstance(value, numbers.Real):
            return {"kind": "float", "value": float(value), "type": type(value).__name__}
        return {"kind": "other", "value": None, "type": type(value).__name__}

    out = {}
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.5], [0.1, 0.2, 0.3, 0.4],
                           [5.0, -5.0, 0.0, 0.0], [0.0, 0.0, 9.0, 1.0], [1.0, 2.0, 3.0, 0.0],
                           [0.3, 0.2, 0.1, 0.0], [-1.0, -2.0, -3.0, -0.5]])
    labels = torch.tensor([0, 1, 3, 1, 2, 0, 0, 2])            # 5 of 8 correct
    out["acc_logits"] = describe(accuracy(scores, labels))
    out["acc_logprobs"] = describe(accuracy(F.log_softmax(scores, dim=1), labels))
    out["acc_probs"] = describe(accuracy(F.softmax(scores[:5], dim=1), labels[:5]))
    out["acc_single"] = describe(accuracy(scores[3:4], labels[3:4]))

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    torch.manual_seed(seed)
    net = torch.nn.Linear(4, 3)
    start = copy.deepcopy(net.state_dict())
    gen = torch.Generator().manual_seed(seed + 2)
    X, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        out["expected_loss"] = margin_loss(net(X), y).item()
        out["expected_metric"] = true_class_prob(net(X), y)
    result = loss_batch(net, margin_loss, X, y)
    with_metric = loss_batch(net, margin_loss, X, y, metric=true_class_prob)
    out["plain"] = {"len": len(result) if isinstance(result, (tuple, list)) else -1,
                    "type": type(result).__name__}
    if isinstance(result, (tuple, list)) and len(result) == 3:
        loss, n, value = result
        out["plain"].update({"loss": describe(loss), "n": describe(n), "value_none": value is None})
    if isinstance(with_metric, (tuple, list)) and len(with_metric) == 3:
        out["plain"]["metric"] = describe(with_metric[2])
    out["unchanged"] = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), start.values()))

    net.load_state_dict(start)
    ref = copy.deepcopy(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    returned, expected_losses, expected_metrics = [], [], []
    for _ in range(2):
        with torch.no_grad():
            y_hat = ref(X)
        expected_losses.append(margin_loss(y_hat, y).item())
        expected_metrics.append(true_class_prob(y_hat, y))
        ref_opt.zero_grad()
        margin_loss(ref(X), y).backward()
        ref_opt.step()
        result = loss_batch(net, margin_loss, X, y, optimizer, true_class_prob)
        returned.append([describe(r) for r in result] if isinstance(result, (tuple, list)) and len(result) == 3
                        else None)
    out["steps"] = {"returned": returned, "losses": expected_losses, "metrics": expected_metrics,
                    "params": [p.detach().clone() for p in net.parameters()],
                    "ref_params": [p.detach().clone() for p in ref.parameters()]}
    return out


def probe_evaluate(ns, seed):
    """evaluate on batches of sizes 10, 10, 3 with a model that records its mode at every call."""
    import torch
    import torch.nn.functional as F
    evaluate = ns.require("evaluate")

    def describe(value):
        """(In the student's process.) A plain description of a returned number: kind, value, type name."""
        import numbers
        if isinstance(value, bool) or value is None:
            return {"kind": "none" if value is None else "other", "value": None, "type": type(value).__name__}
        if isinstance(value, torch.Tensor):
            if value.numel() == 1 and value.device.type != "meta":
                integral = not value.is_floating_point() and not value.is_complex()
                return {"kind": "tensor-int" if integral else "tensor", "value": float(value.detach()),
                        "type": "tensor", "graph": bool(value.requires_grad)}
            return {"kind": "other", "value": None, "type": f"tensor of shape {tuple(value.shape)}"}
        if isinstance(value, numbers.Integral):
            return {"kind": "int", "value": float(value), "type": type(value).__name__}
        if isinstance(value, numbers.Real):
            return {"kind": "float", "value": float(value), "type": type(value).__name__}
        return {"kind": "other", "value": None, "type": type(value).__name__}


    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.calls = []

        def forward(self, X):
            self.calls.append((self.training, torch.is_grad_enabled(), len(X)))
            return self.linear(X)

    def ref_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
        y_hat = net(X)
        loss = loss_fn(y_hat, y)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item(), len(X), (metric(y_hat, y) if metric is not None else None)

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    torch.manual_seed(seed)
    net = Recorder()
    gen = torch.Generator().manual_seed(seed + 5)
    X = torch.randn(23, 4, generator=gen)
    X[20:] *= 4                                           # the small last batch differs from the others
    y = torch.randint(0, 3, (23,), generator=gen)
    batches = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    with torch.no_grad():
        losses = [margin_loss(net.linear(a), b).item() for a, b in batches]
        metrics = [true_class_prob(net.linear(a), b) for a, b in batches]
    sizes = [10, 10, 3]
    expected = {"loss": sum(l * n for l, n in zip(losses, sizes)) / 23,
                "metric": sum(m * n for m, n in zip(metrics, sizes)) / 23,
                "unweighted_loss": sum(losses) / 3, "unweighted_metric": sum(metrics) / 3}
    scope = evaluate.__globals__
    saved = scope.get("loss_batch", None)
    had = "loss_batch" in scope
    scope["loss_batch"] = ref_loss_batch
    try:
        result = evaluate(net, margin_loss, batches, true_class_prob)
        result_none = evaluate(net, margin_loss, batches)
    finally:
        if had:
            scope["loss_batch"] = saved
        else:
            scope.pop("loss_batch", None)

    def plain(result):
        if not isinstance(result, dict):
            return {"__type__": type(result).__name__}
        return {k: describe(v) for k, v in result.items() if isinstance(k, str)}

    return {"result": plain(result), "result_none": plain(result_none), "expected": expected,
            "calls": net.calls}


def probe_fit(ns, seed):
    """fit for 3 epochs from eval mode, with reference loss_batch / evaluate, against a reference loop;
    then without valid_iter, and with progress=True."""
    import copy
    import torch
    import torch.nn.functional as F
    fit = ns.require("fit")

    def describe(value):
        """(In the student's process.) A plain description of a returned number: kind, value, type name."""
        import numbers
        if isinstance(value, bool) or value is None:
            return {"kind": "none" if value is None else "other", "value": None, "type": type(value).__name__}
        if isinstance(value, torch.Tensor):
            if value.numel() == 1 and value.device.type != "meta":
                integral = not value.is_floating_point() and not value.is_complex()
                return {"kind": "tensor-int" if integral else "tensor", "value": float(value.detach()),
                        "type": "tensor", "graph": bool(value.requires_grad)}
            return {"kind": "other", "value": None, "type": f"tensor of shape {tuple(value.shape)}"}
        if isinstance(value, numbers.Integral):
            return {"kind": "int", "value": float(value), "type": type(value).__name__}
        if isinstance(value, numbers.Real):
            return {"kind": "float", "value": float(value), "type": type(value).__name__}
        return {"kind": "other", "value": None, "type": type(value).__name__}


    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.calls = []

        def forward(self, X):
            self.calls.append((self.training, torch.is_grad_enabled(), len(X)))
            return self.linear(X)

    def ref_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
        y_hat = net(X)
        loss = loss_fn(y_hat, y)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item(), len(X), (metric(y_hat, y) if metric is not None else None)

    def ref_evaluate(net, loss_fn, data_iter, metric=None):
        net.eval()                                         # left in eval mode: fit switches back
        total_loss, total_metric, total_n = 0.0, 0.0, 0
        with torch.no_grad():
            for X, y in data_iter:
                loss, n, value = ref_loss_batch(net, loss_fn, X, y, metric=metric)
                total_loss += loss * n
                total_n += n
                total_metric += (value or 0.0) * n
        return {"loss": total_loss / total_n,
                "metric": total_metric / total_n if metric is not None else None, "n": total_n}

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

    gen = torch.Generator().manual_seed(seed + 3)
    X = torch.randn(23, 4, generator=gen)
    y = torch.randint(0, 3, (23,), generator=gen)
    train_batches = [(X[:5], y[:5]), (X[5:10], y[5:10]), (X[10:13], y[10:13])]
    valid_batches = [(X[13:17], y[13:17]), (X[17:21], y[17:21])]
    num_epochs = 3

    torch.manual_seed(seed)
    net = Recorder()
    start = copy.deepcopy(net.state_dict())
    ref = copy.deepcopy(net)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    expected = {"train_loss": [], "valid_loss": [], "valid_metric": [], "unweighted_train_loss": []}
    for _ in range(num_epochs):
        total, count, losses = 0.0, 0, []
        for a, b in train_batches:
            loss, n, _ = ref_loss_batch(ref, margin_loss, a, b, ref_opt)
            total, count = total + loss * n, count + n
            losses.append(loss)
        expected["train_loss"].append(total / count)
        expected["unweighted_train_loss"].append(sum(losses) / len(losses))
        result = ref_evaluate(ref, margin_loss, valid_batches, true_class_prob)
        expected["valid_loss"].append(result["loss"])
        expected["valid_metric"].append(result["metric"])

    def describe_history(history):
        if not isinstance(history, dict):
            return {"__type__": type(history).__name__}
        described = {}
        for key, values in history.items():
            if not isinstance(key, str):
                continue
            if isinstance(values, (list, tuple)):
                described[key] = {"type": "list", "items": [describe(v) for v in values]}
            else:
                described[key] = {"type": type(values).__name__, "items": None}
        return described

    scope = fit.__globals__
    saved = {name: scope[name] for name in ("loss_batch", "evaluate") if name in scope}
    scope["loss_batch"], scope["evaluate"] = ref_loss_batch, ref_evaluate
    runs = {}
    try:
        optimizer = torch.optim.SGD(net.parameters(), lr=0.3)
        net.eval()                                         # fit must switch to train mode itself
        history = fit(net, margin_loss, optimizer, train_batches, num_epochs, valid_batches, true_class_prob)
        runs["main"] = {"history": describe_history(history), "calls": list(net.calls),
                        "params": [p.detach().clone() for p in net.parameters()]}
        for name, kwargs in (("no_valid", {}), ("progress", {"valid_iter": valid_batches,
                                                             "metric": true_class_prob, "progress": True})):
            net.load_state_dict(start)
            optimizer = torch.optim.SGD(net.parameters(), lr=0.3)
            try:
                history = fit(net, margin_loss, optimizer, train_batches, num_epochs, **kwargs)
                runs[name] = {"history": describe_history(history),
                              "params": [p.detach().clone() for p in net.parameters()]}
            except Exception as exc:
                runs[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    finally:
        for name in ("loss_batch", "evaluate"):
            if name in saved:
                scope[name] = saved[name]
            else:
                scope.pop(name, None)
    return {"runs": runs, "expected": expected, "ref_params": [p.detach().clone() for p in ref.parameters()]}


def probe_custom_layer(ns, seed):
    """MyLinear's parameters, forward, gradients, initialisation, device move and use in nn.Sequential."""
    import torch
    MyLinear = ns.require("MyLinear", kind="class")
    out = {}
    torch.manual_seed(seed)
    layer = MyLinear(5, 3)
    out["module"] = isinstance(layer, torch.nn.Module)
    if not out["module"]:
        return out
    named = dict(layer.named_parameters())
    out["names"] = sorted(named)
    out["shapes"] = {k: tuple(v.shape) for k, v in named.items()}
    out["state_keys"] = sorted(layer.state_dict())
    out["attr"] = {k: ("parameter" if isinstance(getattr(layer, k, None), torch.nn.Parameter) else
                       "tensor" if isinstance(getattr(layer, k, None), torch.Tensor) else
                       "missing" if getattr(layer, k, None) is None else type(getattr(layer, k)).__name__)
                   for k in ("weight", "bias")}
    if out["attr"] != {"weight": "parameter", "bias": "parameter"}:
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
                "y_hat": y_hat.detach() if isinstance(y_hat, torch.Tensor) else None,
                "graph": isinstance(y_hat, torch.Tensor) and y_hat.requires_grad}
        try:
            (y_hat * R).sum().backward()
            case["W_grad"], case["b_grad"] = layer.weight.grad, layer.bias.grad
        except Exception as exc:
            case["backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        out["cases"].append(case)
    torch.manual_seed(seed)
    big = MyLinear(1000, 400)
    w, b = big.weight.detach().double(), big.bias.detach()
    out["init"] = {"shape": tuple(w.shape), "mean": w.mean().item(), "std": w.std().item(),
                   "beyond_2std": (w.abs() > 0.02).double().mean().item(), "bias_max": b.abs().max().item()}
    moved = MyLinear(5, 3).to("meta")
    out["meta"] = sorted({p.device.type for p in moved.parameters()})
    seq = torch.nn.Sequential(MyLinear(4, 8), torch.nn.ReLU(), MyLinear(8, 2))
    out["sequential_params"] = sum(p.numel() for p in seq.parameters())
    with torch.no_grad():
        y_hat = seq(torch.randn(3, 4, generator=gen))
    out["sequential_shape"] = tuple(y_hat.shape)
    return out


def probe_init_apply(ns, seed):
    """net.apply(init_weights) on nested containers holding Linear layers (with and without bias) and others."""
    import copy
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
    with torch.no_grad():                  # non-default values, so that a reset would show
        for module in (net[0][2], net[3]):
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.5, 0.5)
    others = {name: copy.deepcopy(m.state_dict()) for name, m in net.named_modules()
              if isinstance(m, (nn.Conv2d, nn.LayerNorm, nn.BatchNorm1d))}
    out = {}
    try:
        net.apply(init_weights)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return out
    linears = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double()
            linears.append({"fan_in": m.in_features, "fan_out": m.out_features, "min": w.min().item(),
                            "max": w.max().item(), "mean": w.mean().item(), "std": w.std().item(),
                            "bias_max": None if m.bias is None else m.bias.detach().abs().max().item()})
    out["linears"] = linears
    out["changed"] = sorted(name for name, m in net.named_modules() if name in others and not all(
        torch.equal(a, b) for a, b in zip(m.state_dict().values(), others[name].values())))
    return out


def probe_shared_layer(ns, seed, sizes):
    """make_shared_net: which nn.Linear runs when (forward hooks), output, and gradients per parameter."""
    import torch
    from torch import nn
    make_shared_net = ns.require("make_shared_net")
    in_features, hidden, out_features, n = sizes
    torch.manual_seed(seed)
    net = make_shared_net(in_features, hidden, out_features)
    out = {"module": isinstance(net, nn.Module)}
    if not out["module"]:
        return out
    params = list(net.parameters())
    out["n_params"] = sum(p.numel() for p in params)
    out["n_tensors"] = len(params)
    keys = {id(p): i for i, p in enumerate(params)}
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
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


def probe_save_load(ns, seed, X):
    """save_params / load_params in a fresh folder of the working folder, for two different networks."""
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
            torch.manual_seed(seed)
            net = make_net()
            net.train()
            with torch.no_grad():                # move the batch-norm statistics away from their defaults
                for _ in range(3):
                    net(X * 2 + 1)
            torch.manual_seed(seed + 1)          # make_net inside load_params draws different weights
            path = os.path.join(folder, filename)
            state = {k: v.clone() for k, v in net.state_dict().items()}
            save_params(net, path)
            case = {"exists": os.path.isfile(path)}
            if case["exists"]:
                try:
                    saved = torch.load(path, weights_only=True)
                    case["saved_keys"] = sorted(saved) if isinstance(saved, dict) else None
                    case["saved_type"] = type(saved).__name__
                    case["saved_equal"] = isinstance(saved, dict) and set(saved) == set(state) and all(
                        isinstance(saved[k], torch.Tensor) and torch.equal(saved[k], state[k]) for k in state)
                except Exception as exc:
                    case["saved_error"] = f"{type(exc).__name__}"
            case["keys"] = sorted(state)
            net.eval()
            with torch.no_grad():
                case["expected"] = net(X)
            try:
                loaded = load_params(make_net, path)
            except Exception as exc:
                message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc).splitlines()[0]) if str(exc) else ""
                case["load_error"] = f"{type(exc).__name__}: {message[:160]}"
                case["loaded_module"] = False
                out[name] = case
                continue
            case["loaded_module"] = isinstance(loaded, nn.Module)
            if case["loaded_module"]:
                case["loaded_training"] = loaded.training
                case["loaded_is_original"] = loaded is net
                with torch.no_grad():
                    case["pred"] = loaded(X)
            out[name] = case
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------------------- mnist_mlp
@pytest.fixture(scope="module")
def mlp_structure(student):
    return student.probe(probe_mlp_structure, _seed(0), label="`MnistModel`")


@pytest.mark.mnist_mlp
def test_mlp_is_module_with_parameters(mlp_structure):
    out = mlp_structure
    expect(out["module_32"], "MnistModel(784, 32, 10) should be an nn.Module (a subclass, or an nn.Sequential).")
    for key, (i, h, o) in (("32", (784, 32, 10)), ("64", (784, 64, 10)), ("small", (196, 20, 4)),
                           ("default", (784, 32, 10))):
        expected = i * h + h + h * o + o
        got = out[f"params_{key}"]
        call = "MnistModel()" if key == "default" else f"MnistModel({i}, {h}, {o})"
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
    expect(out["loss_graph"], "loss_fn(y_hat, y) is detached from the model: backward() through it cannot reach "
           "the weights. Return the loss tensor itself (no .item(), .detach() or new tensor).")
    y_hat, y = out["y_hat9"].double(), out["y9"]
    loss9 = out["loss9"]
    expect_tensor(loss9, "loss_fn(y_hat, y) for a batch of 9 images", shape=())
    kind = _output_kind(y_hat)
    expected = -_log_probs(y_hat, kind)[torch.arange(len(y)), y].mean()
    got = float(loss9)
    if abs(got - expected.item()) <= 1e-4 + 1e-4 * abs(expected.item()):
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


@pytest.mark.mnist_mlp
def test_mlp_runs_on_any_device(mlp_structure):
    meta = mlp_structure["meta"]
    if "error" in meta:
        fail("MnistModel and loss_fn should run forward and backward on whatever device the model and the "
             f"batch are on (checked on a device other than the CPU), but they raised {meta['error']}. "
             "Do not create tensors on a fixed device inside forward.")
    expect(meta["device"] == "meta" and meta["shape"] == (4, 10) and meta["grads"],
           "On another device, MnistModel's output and gradients should stay on that device "
           f"(output on {meta['device']}, shape {meta['shape']}).")


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
        expect(got["is_device"],
               f"get_default_device() returned a {got['type']}"
               f"{' (' + repr(got['text']) + ')' if got['text'] else ''} {when}; return a torch.device, "
               f"e.g. torch.device('{want}').")
        expect(got["text"].split(":")[0] == want,
               f"get_default_device() returned torch.device('{got['text']}') {when}; expected "
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
    expect(out["train"] == "ok", f"A model trained on the batches of your DeviceDataLoader failed: {out['train']}.")


# ---------------------------------------------------------------------------------------- loss_batch
@pytest.fixture(scope="module")
def loss_batch_out(student):
    return student.probe(probe_loss_batch, _seed(0), label="`accuracy` / `loss_batch`")


@pytest.mark.loss_batch
def test_accuracy_values(loss_batch_out):
    out = loss_batch_out
    for key, want, what in (("acc_logits", 0.625, "logits with 5 of 8 rows correct"),
                            ("acc_logprobs", 0.625, "log-probabilities with 5 of 8 rows correct"),
                            ("acc_probs", 0.8, "probabilities with 4 of 5 rows correct"),
                            ("acc_single", 0.0, "a single row that is wrong")):
        value = out[key]
        expect(value["kind"] == "float",
               f"accuracy(y_hat, y) should return a Python float (use .item()); for {what} it returned "
               f"{'a tensor' if value['kind'].startswith('tensor') else 'a ' + value['type']}.")
        expect_close(value["value"], want, f"accuracy(y_hat, y) for {what}", rtol=0, atol=1e-6)


@pytest.mark.loss_batch
def test_loss_batch_without_optimizer(loss_batch_out):
    out = loss_batch_out
    plain = out["plain"]
    expect(plain["len"] == 3, f"loss_batch should return a tuple (loss, n, metric value); it returned a {plain['type']}"
           f"{' of length ' + str(plain['len']) if plain['len'] >= 0 else ''}.")
    loss, n = plain["loss"], plain["n"]
    expect(loss["kind"] in ("float", "int"),
           f"loss_batch should return the loss as a Python float (loss.item()), not "
           f"{'a tensor' if loss['kind'].startswith('tensor') else 'a ' + loss['type']}: a tensor keeps its "
           "computation graph alive for as long as it is stored.")
    expect(n["kind"] in ("int", "tensor-int") and n["value"] == 6,
           f"loss_batch should return n = 6 (the batch size) for a batch of 6 examples; it returned "
           f"{number(n, 'a value')}.")
    expect_close(loss["value"], out["expected_loss"], "the loss returned by loss_batch, computed with the loss_fn it "
                 "is given (here not cross-entropy)", rtol=1e-5, atol=1e-6)
    expect(plain["value_none"], "Without a metric, loss_batch should return None as its third value.")
    metric = plain.get("metric")
    expect(metric is not None and metric["value"] is not None,
           "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
    expect_close(metric["value"], out["expected_metric"], "the metric value returned by loss_batch, computed with "
                 "the metric it is given (here not accuracy)", rtol=1e-5, atol=1e-6)
    expect(out["unchanged"], "loss_batch without an optimizer must not change the model's parameters.")


@pytest.mark.loss_batch
def test_loss_batch_with_optimizer(loss_batch_out):
    steps = loss_batch_out["steps"]
    for i, (returned, loss, value) in enumerate(zip(steps["returned"], steps["losses"], steps["metrics"]), 1):
        expect(returned is not None, "loss_batch with an optimizer should return a tuple (loss, n, metric value).")
        expect(returned[0]["value"] is not None, "loss_batch should return the loss as a number.")
        expect_close(returned[0]["value"], loss, f"the loss returned by call {i} of loss_batch with an optimizer "
                     "(the loss before that step)", rtol=1e-5, atol=1e-6)
        expect(returned[2]["value"] is not None,
               "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
        expect_close(returned[2]["value"], value, f"the metric value returned by call {i} (computed on the "
                     "predictions before the step)", rtol=1e-5, atol=1e-6)
    for got, want in zip(steps["params"], steps["ref_params"]):
        expect_close(got, want, "the parameters after two calls of loss_batch with the SGD optimizer it is given "
                     "(one step each: zero_grad, backward, step)", rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- evaluate_loop
@pytest.fixture(scope="module")
def evaluate_out(student):
    return student.probe(probe_evaluate, _seed(0), label="`evaluate`")


@pytest.mark.evaluate_loop
def test_evaluate_mode_and_no_grad(evaluate_out):
    calls = evaluate_out["calls"]
    expect(len(calls) >= 3, f"evaluate called the model {len(calls)} times for 3 batches.")
    expect(all(not training for training, _, _ in calls),
           "evaluate ran the model in training mode: call net.eval() first (dropout and batch norm "
           "behave differently when predicting).")
    expect(all(not grad for _, grad, _ in calls),
           "evaluate ran the model with gradients enabled: wrap the loop in torch.no_grad().")


@pytest.mark.evaluate_loop
def test_evaluate_weighted_means(evaluate_out):
    result, expected = evaluate_out["result"], evaluate_out["expected"]
    expect("__type__" not in result and {"loss", "metric", "n"} <= set(result),
           "evaluate should return a dict with the keys 'loss', 'metric' and 'n'"
           f"{'; it returned a ' + result['__type__'] if '__type__' in result else ''}.")
    n = result["n"]
    expect(n["kind"] in ("int", "tensor-int"),
           f"evaluate's 'n' should be the number of examples, an integer; it is {number(n, 'a value')}.")
    expect(n["value"] == 23, f"evaluate returned n = {n['value']:g} for 23 examples in batches of 10, 10 and 3.")
    loss = result["loss"]
    expect(loss["kind"] in ("float", "int"),
           f"evaluate's 'loss' should be a Python number (a mean of the floats loss_batch returns), not "
           f"{'a tensor' if loss['kind'].startswith('tensor') else 'a ' + loss['type']}.")
    if abs(loss["value"] - expected["unweighted_loss"]) < 1e-6:
        fail("evaluate averaged the loss over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(loss["value"], expected["loss"], "the mean loss returned by evaluate (batches of 10, 10 and 3 "
                 "examples, weighted by batch size; computed with the loss_fn it is given)", rtol=1e-5, atol=1e-6)
    metric = result["metric"]
    expect(metric["kind"] in ("float", "int"),
           f"evaluate's 'metric' should be a Python number when a metric is given, not "
           f"{'a tensor' if metric['kind'].startswith('tensor') else 'None' if metric['kind'] == 'none' else 'a ' + metric['type']}.")
    if abs(metric["value"] - expected["unweighted_metric"]) < 1e-6:
        fail("evaluate averaged the metric over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(metric["value"], expected["metric"], "the mean metric returned by evaluate (weighted by batch size; "
                 "computed with the metric it is given, here not accuracy)", rtol=1e-5, atol=1e-6)
    none = evaluate_out["result_none"]
    expect("__type__" not in none and none.get("metric", {}).get("kind") == "none",
           "Without a metric, evaluate should return None under 'metric'.")


# ------------------------------------------------------------------------------------------ fit_loop
@pytest.fixture(scope="module")
def fit_out(student):
    return student.probe(probe_fit, _seed(0), label="`fit`")


@pytest.mark.fit_loop
def test_fit_trains_in_train_mode(fit_out):
    train_calls = [c for c in fit_out["runs"]["main"]["calls"] if c[2] in (5, 3)]
    expect(len(train_calls) == 9, f"fit ran the model on {len(train_calls)} training batches; 3 epochs of 3 "
           "batches are 9.")
    expect(all(training for training, _, _ in train_calls),
           "fit trained the model in eval mode: call net.train() at the start of every epoch (evaluate "
           "leaves the model in eval mode, and the model may start in it).")
    expect(all(grad for _, grad, _ in train_calls), "fit ran training batches without gradients.")


def _check_history(history, expected, keys, call):
    """The history of one fit call against the reference loop's values."""
    expect("__type__" not in history, f"{call} should return the history as a dict, not a "
           f"{history.get('__type__')}.")
    epochs = history.get("epoch")
    expect(epochs is not None and epochs["items"] is not None,
           f"The history returned by {call} should hold the list 'epoch'.")
    values = [i["value"] for i in epochs["items"]]
    expect(values == [1.0, 2.0, 3.0], f"history['epoch'] returned by {call} is "
           f"[{', '.join('?' if v is None else f'{v:g}' for v in values)}]; it should be [1, 2, 3] (epochs count "
           "from 1).")
    for key in keys:
        expect(key in history, f"The history returned by {call} has no key '{key}'.")
        entry = history[key]
        expect(entry["items"] is not None and len(entry["items"]) == 3,
               f"history['{key}'] should be a list with one value per epoch (3 epochs).")
        for item in entry["items"]:
            if item["kind"].startswith("tensor"):
                fail(f"history['{key}'] holds tensors"
                     f"{' attached to the computation graph (each keeps its epoch graph alive)' if item.get('graph') else ''}"
                     ": store Python floats (loss.item()).")
            expect(item["kind"] in ("float", "int"), f"history['{key}'] should hold Python numbers, not "
                   f"{'None' if item['kind'] == 'none' else 'a ' + item['type']}.")
        got = [i["value"] for i in entry["items"]]
        if key == "train_loss" and all(abs(g - u) < 1e-7 for g, u in zip(got, expected["unweighted_train_loss"])):
            fail("history['train_loss'] is the plain mean of the batch losses: weight each batch's loss by its "
                 "size (the last batch of an epoch holds 3 examples, the others 5).")
        expect_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected[key], dtype=torch.float64),
                     f"history['{key}'] returned by {call} (per epoch; the training loss weighted by batch size; "
                     "computed with the loss and metric fit is given)", rtol=1e-4, atol=1e-6)


@pytest.mark.fit_loop
def test_fit_history(fit_out):
    _check_history(fit_out["runs"]["main"]["history"], fit_out["expected"],
                   ("train_loss", "valid_loss", "valid_metric"), "fit")


@pytest.mark.fit_loop
def test_fit_parameters(fit_out):
    for got, want in zip(fit_out["runs"]["main"]["params"], fit_out["ref_params"]):
        expect_close(got, want, "the parameters after fit (3 epochs, one step of the optimizer it is given per "
                     "training batch)", rtol=1e-4, atol=1e-6)


@pytest.mark.fit_loop
def test_fit_without_validation(fit_out):
    runs = fit_out["runs"]
    for name, call, keys in (("no_valid", "fit(..., valid_iter=None)", ("train_loss",)),
                             ("progress", "fit(..., progress=True)", ("train_loss", "valid_loss", "valid_metric"))):
        run = runs[name]
        expect("error" not in run, f"{call} raised {run.get('error')}"
               f"{': evaluate only when valid_iter is given' if name == 'no_valid' else ''}.")
        _check_history(run["history"], fit_out["expected"], keys, call)
        for got, want in zip(run["params"], fit_out["ref_params"]):
            expect_close(got, want, f"the parameters after {call}", rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------- custom_layer
@pytest.fixture(scope="module")
def custom_layer_out(student):
    return student.probe(probe_custom_layer, _seed(0), label="`MyLinear`")


@pytest.mark.custom_layer
def test_custom_layer_parameters(custom_layer_out):
    out = custom_layer_out
    expect(out["module"], "MyLinear(5, 3) should be an nn.Module (subclass nn.Module and call super().__init__()).")
    attr = out["attr"]
    for name in ("weight", "bias"):
        expect(attr[name] != "missing", f"MyLinear(5, 3) has no attribute `{name}`.")
        expect(attr[name] == "parameter",
               f"MyLinear's `{name}` is a plain {attr[name]}, not an nn.Parameter: it is not registered, so it is "
               "missing from parameters() (the optimiser never updates it), from state_dict() and from .to(device). "
               f"Wrap it: self.{name} = nn.Parameter(...).")
    expect(out["names"] == ["bias", "weight"],
           f"MyLinear(5, 3) should register exactly the parameters weight and bias; named_parameters() gives "
           f"{', '.join(out['names']) or 'none'}.")
    expect(out["state_keys"] == ["bias", "weight"],
           f"MyLinear(5, 3).state_dict() should hold weight and bias; it holds {', '.join(out['state_keys']) or 'nothing'}.")
    expect(out["shapes"] == {"weight": (5, 3), "bias": (3,)},
           f"MyLinear(5, 3) should have weight of shape (5, 3) (in_features, out_features) and bias of shape (3,); "
           f"they are {out['shapes'].get('weight')} and {out['shapes'].get('bias')}.")
    expect(out["meta"] == ["meta"], "MyLinear(5, 3).to(device) should move weight and bias to the device.")
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
        expect(case["graph"], f"The output of {what} does not require grad: it is cut off from weight and bias, "
               "so no gradient reaches them and training cannot change them. Use self.weight and self.bias "
               "themselves in forward (not self.weight.data or a detached copy).")
        expect("backward_error" not in case, f"backward through {what} failed: {case.get('backward_error')}.")
        for name, grad, want in (("weight", case["W_grad"], X.T @ case["R"].double()),
                                 ("bias", case["b_grad"], case["R"].double().sum(0))):
            expect(grad is not None,
                   f"After backward through {what}, {name}.grad is None: the output does not depend on the "
                   f"parameter through autograd (use self.{name} itself in forward, not self.{name}.data or a copy).")
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
def init_out(student):
    return student.probe(probe_init_apply, _seed(0), label="`init_weights`")


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
def test_init_leaves_other_modules(init_out):
    _init_error(init_out)
    changed = init_out["changed"]
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
        expect(out["module"], f"{call} should return an nn.Module (e.g. an nn.Sequential).")
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
        expect(out["module"] and len(out["calls"]) == 4, f"{call} should run 4 linear layers (see the other message).")
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
@pytest.fixture(scope="module")
def save_load_out(student):
    X = torch.randn(7, 6, generator=torch.Generator().manual_seed(_seed(13)))
    return student.probe(probe_save_load, _seed(0), X, label="`save_params` / `load_params`")


@pytest.mark.save_load_params
def test_save_params_writes_state_dict(save_load_out):
    for name, case in save_load_out.items():
        expect(case["exists"], "save_params(net, path) wrote no file at path: torch.save(net.state_dict(), path).")
        expect("saved_error" not in case,
               "The file written by save_params could not be read as a state_dict with torch.load (it raised "
               f"{case.get('saved_error')}): save net.state_dict(), a dict of tensors, not the network object.")
        expect(case.get("saved_type") in ("OrderedDict", "dict") and case.get("saved_equal"),
               "The file written by save_params should hold net.state_dict(): a dict with the keys "
               f"{', '.join(case['keys'])} and the network's current tensors; it holds "
               f"{'the keys ' + ', '.join(case['saved_keys']) if case.get('saved_keys') is not None else 'a ' + str(case.get('saved_type'))}"
               " (or other values).")


@pytest.mark.save_load_params
def test_load_params_reproduces(save_load_out):
    for name, case in save_load_out.items():
        expect("load_error" not in case, f"load_params(make_net, path) raised {case.get('load_error')}. Build the "
               "network with the make_net it is given, then net.load_state_dict(torch.load(path)) with the "
               "state_dict that save_params wrote.")
        expect(case["loaded_module"], "load_params(make_net, path) should return the network (an nn.Module).")
        expect(not case["loaded_is_original"], "load_params should build a new network with make_net().")
        pred = expect_tensor(case["pred"], "the loaded network's output", shape=tuple(case["expected"].shape))
        if not torch.equal(pred, case["expected"]):
            if case["loaded_training"]:
                fail("The network returned by load_params is in training mode, so dropout and batch norm change "
                     "its predictions: call net.eval() before returning it.")
            fail("The network returned by load_params does not reproduce the saved network's predictions exactly "
                 "(compared with torch.equal): build it with the make_net it is given, then "
                 "net.load_state_dict(torch.load(path)).")
        expect(not case["loaded_training"], "load_params should return the network in evaluation mode (net.eval()).")
