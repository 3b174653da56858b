"""Graders for 06-mlp-gpu: an MNIST MLP, device helpers, loss_batch / evaluate / fit.

Accuracy (task mnist_mlp): the judge loads the MNIST test split (course.data), splits it with seed 0
into 8,000 training and 2,000 held-out images, sends the training images and labels and the held-out
images (never their labels) into the student's process, where the student's ``MnistModel(784, 32, 10)``
is trained with the student's ``fit`` and ``loss_fn``: SGD lr 0.1, batch 100, shuffled with seed 0,
4 epochs, torch.manual_seed(0) before building the model, one torch thread. The judge computes the
held-out accuracy from the returned predictions; the probe also returns the mean loss (the student's
``loss_fn``) on 2,000 training images after training.

Calibration (python benchmarks/calibrate_mnist.py --lesson mlp --variants: the probe itself run on the
reference notebook's code, seeds 0-19 in place of seed 0):
  reference              held-out accuracy min 0.9200, median 0.9280, max 0.9335
                         training loss     min 0.192,  median 0.214,  max 0.245
  log_softmax + nll_loss, nn.Sequential: identical to the reference (same random draws)
  softmax before cross_entropy: accuracy min 0.7500, median 0.8327, max 0.9065 (so accuracy alone does
                         not catch it on every seed), training loss min 1.590, median 1.648, max 1.722
Thresholds: accuracy >= 0.90 (0.02 below the reference minimum); loss <= 0.50 (twice the reference
maximum; the softmax-before-cross-entropy floor is 1.46 with 10 classes, and it measured >= 1.59).
Training and prediction took a median 1.7-2.8 s per run in the calibration (2 cores shared with other jobs).
"""

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task
from course import data

ASSIGNMENT = "06-mlp-gpu"
TASKS = [
    Task("device_helpers", 2, "get_default_device, to_device, DeviceDataLoader"),
    Task("loss_batch", 1, "accuracy and the loss / optimiser step of one batch"),
    Task("evaluate_loop", 2, "Evaluation in eval mode without gradients, weighted by batch size"),
    Task("fit_loop", 2, "The training loop returning a history"),
    Task("mnist_mlp", 3, "MLP 784 -> hidden -> 10 with ReLU, and its loss, trained with fit"),
]

MLP_ACCURACY_MIN = 0.90
MLP_LOSS_MAX = 0.50
MLP_TRAINING = {"hidden": 32, "lr": 0.1, "num_epochs": 4, "batch_size": 100, "seed": 0}
MNIST_MEAN, MNIST_STD = data.MNIST_MEAN[0], data.MNIST_STD[0]


# ------------------------------------------------------------------------------------------ probes
def probe_mlp_structure(ns):
    """Shapes, parameters, per-image independence, nonlinearity, and a run on the meta device."""
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")
    out = {}
    for hidden in (32, 64):
        torch.manual_seed(0)
        net = MnistModel(784, hidden, 10)
        out[f"module_{hidden}"] = isinstance(net, torch.nn.Module)
        out[f"params_{hidden}"] = sum(p.numel() for p in net.parameters()) if out[f"module_{hidden}"] else -1
    torch.manual_seed(0)
    net = MnistModel(784, 32, 10)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(6, 1, 28, 28, generator=gen)
    with torch.no_grad():
        out["y_hat"] = net(X)
        out["again"] = net(X)
        out["single"] = net(X[:1])
        out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(6)])
        out["mid"] = net((X[:3] + X[3:]) / 2)
        out["ends"] = (net(X[:3]) + net(X[3:])) / 2
        out["flat"] = net(X.reshape(6, 784))
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    out["loss"] = loss_fn(net(X), y).detach()
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
    """Train the student's model with the student's fit; return held-out predictions and training loss."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")
    fit = ns.require("fit")
    accuracy = ns.require("accuracy")

    def normalize(images):
        return ((images.float() / 255 - mean) / std).unsqueeze(1)

    Xtr, Xte = normalize(X_train), normalize(X_test)
    torch.manual_seed(seed)
    net = MnistModel(784, hidden, 10)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    train_iter = DataLoader(TensorDataset(Xtr, y_train), batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
    valid_iter = DataLoader(TensorDataset(Xtr[:1000], y_train[:1000]), batch_size=500)
    fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter, accuracy)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(Xte[i:i + 500]).argmax(dim=1) for i in range(0, len(Xte), 500)])
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
            result[str(flag)] = str(torch.device(device)) if isinstance(device, (str, torch.device)) \
                else f"a {type(device).__name__}"
    finally:
        torch.cuda.is_available = original
    return result


def probe_to_device(ns):
    """to_device on a tensor, a list and a tuple, to the meta device and back to the CPU."""
    import torch
    to_device = ns.require("to_device")
    meta = torch.device("meta")
    X, y = torch.randn(3, 2), torch.arange(3)
    one = to_device(X, meta)
    pair = to_device([X, y], meta)
    tup = to_device((X, y), meta)
    back = to_device(X, torch.device("cpu"))

    def describe(value):
        if isinstance(value, torch.Tensor):
            return {"type": "tensor", "device": value.device.type, "shape": tuple(value.shape)}
        if isinstance(value, (list, tuple)):
            return {"type": type(value).__name__, "items": [describe(v) for v in value]}
        return {"type": type(value).__name__}

    return {"one": describe(one), "pair": describe(pair), "tuple": describe(tup),
            "back": back if isinstance(back, torch.Tensor) else None, "X": X}


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


def probe_loss_batch(ns):
    """accuracy on known scores; loss_batch without and with an optimiser."""
    import copy
    import torch
    import torch.nn.functional as F
    accuracy = ns.require("accuracy")
    loss_batch = ns.require("loss_batch")
    out = {}
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.5], [0.1, 0.2, 0.3, 0.4],
                           [5.0, -5.0, 0.0, 0.0], [0.0, 0.0, 9.0, 1.0], [1.0, 2.0, 3.0, 0.0],
                           [0.3, 0.2, 0.1, 0.0], [-1.0, -2.0, -3.0, -0.5]])
    labels = torch.tensor([0, 1, 3, 1, 2, 0, 0, 2])            # 5 of 8 correct
    out["acc_logits"] = float(accuracy(scores, labels))
    out["acc_logprobs"] = float(accuracy(F.log_softmax(scores, dim=1), labels))
    out["acc_probs"] = float(accuracy(F.softmax(scores[:5], dim=1), labels[:5]))

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    start = copy.deepcopy(net.state_dict())
    gen = torch.Generator().manual_seed(2)
    X, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        expected = F.cross_entropy(net(X), y).item()
    result = loss_batch(net, F.cross_entropy, X, y)
    out["plain"] = {"len": len(result) if isinstance(result, (tuple, list)) else -1,
                    "type": type(result).__name__}
    if isinstance(result, (tuple, list)) and len(result) == 3:
        loss, n, value = result
        out["plain"].update({"loss_type": type(loss).__name__,
                             "loss_grad": bool(isinstance(loss, torch.Tensor) and loss.requires_grad),
                             "loss": float(loss), "n": int(n), "value_none": value is None})
    out["expected_loss"] = expected
    out["unchanged"] = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), start.values()))

    def metric(y_hat, y):
        return (y_hat.argmax(dim=1) == y).float().mean().item()

    net.load_state_dict(start)
    ref = copy.deepcopy(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    returned, expected_losses, expected_metrics = [], [], []
    for _ in range(2):
        with torch.no_grad():
            y_hat = ref(X)
        expected_losses.append(F.cross_entropy(y_hat, y).item())
        expected_metrics.append(metric(y_hat, y))
        ref_opt.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        ref_opt.step()
        result = loss_batch(net, F.cross_entropy, X, y, optimizer, metric)
        returned.append([float(result[0]), int(result[1]),
                         None if result[2] is None else float(result[2])])
    out["steps"] = {"returned": returned, "losses": expected_losses, "metrics": expected_metrics,
                    "params": [p.detach().clone() for p in net.parameters()],
                    "ref_params": [p.detach().clone() for p in ref.parameters()]}
    return out


def probe_evaluate(ns):
    """evaluate on batches of sizes 10, 10, 3 with a model that records its mode at every call."""
    import torch
    import torch.nn.functional as F
    evaluate = ns.require("evaluate")

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

    def metric(y_hat, y):
        return (y_hat.argmax(dim=1) == y).float().mean().item()

    torch.manual_seed(0)
    net = Recorder()
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(23, 4, generator=gen)
    with torch.no_grad():
        best = net.linear(X).argmax(dim=1)
    y = torch.randint(0, 3, (23,), generator=gen)
    y[20:] = best[20:]                                   # the small last batch is all correct
    y[:20] = (best[:20] + 1) % 3                         # the full batches are all wrong
    y[0], y[15] = best[0], best[15]
    batches = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    with torch.no_grad():
        losses = [F.cross_entropy(net.linear(a), b).item() for a, b in batches]
        metrics = [metric(net.linear(a), b) for a, b in batches]
    sizes = [10, 10, 3]
    expected = {"loss": sum(l * n for l, n in zip(losses, sizes)) / 23,
                "metric": sum(m * n for m, n in zip(metrics, sizes)) / 23,
                "unweighted_metric": sum(metrics) / 3}
    net.train()
    scope = evaluate.__globals__
    saved = scope.get("loss_batch", None)
    had = "loss_batch" in scope
    scope["loss_batch"] = ref_loss_batch
    try:
        result = evaluate(net, F.cross_entropy, batches, metric)
        result_none = evaluate(net, F.cross_entropy, batches)
    finally:
        if had:
            scope["loss_batch"] = saved
        else:
            scope.pop("loss_batch", None)

    def plain(result):
        if not isinstance(result, dict):
            return {"__type__": type(result).__name__}
        return {k: (float(v) if isinstance(v, (int, float, torch.Tensor)) and not isinstance(v, bool)
                    and (not isinstance(v, torch.Tensor) or v.numel() == 1) else
                    (None if v is None else repr(type(v).__name__)))
                for k, v in result.items() if isinstance(k, str)}

    return {"result": plain(result), "result_none": plain(result_none), "expected": expected,
            "calls": net.calls}


def probe_fit(ns):
    """fit for 3 epochs from eval mode, with reference loss_batch / evaluate, against a reference loop."""
    import copy
    import torch
    import torch.nn.functional as F
    fit = ns.require("fit")

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

    def metric(y_hat, y):
        return (y_hat.argmax(dim=1) == y).float().mean().item()

    gen = torch.Generator().manual_seed(3)
    X = torch.randn(23, 4, generator=gen)
    y = torch.randint(0, 3, (23,), generator=gen)
    train_batches = [(X[:5], y[:5]), (X[5:10], y[5:10]), (X[10:13], y[10:13])]
    valid_batches = [(X[13:17], y[13:17]), (X[17:21], y[17:21])]
    num_epochs = 3

    torch.manual_seed(0)
    net = Recorder()
    ref = copy.deepcopy(net)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    expected = {"train_loss": [], "valid_loss": [], "valid_metric": []}
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for a, b in train_batches:
            loss, n, _ = ref_loss_batch(ref, F.cross_entropy, a, b, ref_opt)
            total, count = total + loss * n, count + n
        expected["train_loss"].append(total / count)
        result = ref_evaluate(ref, F.cross_entropy, valid_batches, metric)
        expected["valid_loss"].append(result["loss"])
        expected["valid_metric"].append(result["metric"])

    optimizer = torch.optim.SGD(net.parameters(), lr=0.3)
    net.eval()                                             # fit must switch to train mode itself
    scope = fit.__globals__
    saved = {name: scope[name] for name in ("loss_batch", "evaluate") if name in scope}
    scope["loss_batch"], scope["evaluate"] = ref_loss_batch, ref_evaluate
    try:
        history = fit(net, F.cross_entropy, optimizer, train_batches, num_epochs, valid_batches, metric)
    finally:
        for name in ("loss_batch", "evaluate"):
            if name in saved:
                scope[name] = saved[name]
            else:
                scope.pop(name, None)

    def describe(values):
        if not isinstance(values, (list, tuple)):
            return {"type": type(values).__name__}
        items = []
        for v in values:
            if isinstance(v, torch.Tensor):
                items.append({"tensor": True, "graph": bool(v.requires_grad or v.grad_fn is not None),
                              "value": float(v.detach()) if v.numel() == 1 else None})
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                items.append({"tensor": False, "graph": False, "value": float(v)})
            else:
                items.append({"tensor": False, "graph": False, "value": None, "type": type(v).__name__})
        return {"type": "list", "items": items}

    out = {"history_type": type(history).__name__, "calls": net.calls, "expected": expected,
           "params": [p.detach().clone() for p in net.parameters()],
           "ref_params": [p.detach().clone() for p in ref.parameters()]}
    if isinstance(history, dict):
        out["history"] = {k: describe(v) for k, v in history.items() if isinstance(k, str)}
    return out


# ----------------------------------------------------------------------------------------- mnist_mlp
@pytest.fixture(scope="module")
def mlp_structure(student):
    return student.probe(probe_mlp_structure, label="`MnistModel`")


@pytest.mark.mnist_mlp
def test_mlp_is_module_with_parameters(mlp_structure):
    out = mlp_structure
    expect(out["module_32"], "MnistModel(784, 32, 10) should be an nn.Module (a subclass, or an nn.Sequential).")
    for hidden in (32, 64):
        expected = 784 * hidden + hidden + hidden * 10 + 10
        got = out[f"params_{hidden}"]
        expect(got == expected,
               f"MnistModel(784, {hidden}, 10) has {got:,} trainable parameters; 784 -> {hidden} -> 10 has "
               f"{expected:,}. Create both nn.Linear layers in __init__ (layers made inside forward are "
               f"not registered, and new at every call).")


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


@pytest.mark.mnist_mlp
def test_mlp_is_nonlinear(mlp_structure):
    out = mlp_structure
    gap = (out["mid"].double() - out["ends"].double()).abs().max().item()
    expect(gap > 1e-3,
           "MnistModel behaves like a linear map (the output for the average of two images equals the "
           f"average of their outputs within 1e-3; largest difference {gap:.2g}): apply ReLU to the hidden layer.")


@pytest.mark.mnist_mlp
def test_mlp_loss(mlp_structure):
    loss = mlp_structure["loss"]
    expect_tensor(loss, "loss_fn(y_hat, y)", shape=(), finite=True)


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


@pytest.mark.mnist_mlp
def test_mlp_trains_to_accuracy(student):
    X_train, y_train, X_test, y_test = data.mnist_test_split_tensors(2000, seed=0)
    cfg = MLP_TRAINING
    out = student.probe(probe_mlp_training, X_train, y_train, X_test, cfg["hidden"], cfg["lr"],
                        cfg["num_epochs"], cfg["batch_size"], cfg["seed"], MNIST_MEAN, MNIST_STD,
                        timeout=120, label="training MnistModel with your fit")
    pred = expect_tensor(out["pred"], "the predictions for the held-out images", shape=(len(X_test),))
    loss = out["train_loss"]
    expect(loss == loss and loss <= MLP_LOSS_MAX,
           f"After training, loss_fn on training images is {loss:.3f}; at most {MLP_LOSS_MAX:.2f} is expected. "
           "A loss that stays high while accuracy rises usually means softmax was applied twice "
           "(softmax in the model and again inside cross_entropy).")
    acc = (pred.long() == y_test).double().mean().item()
    expect(acc >= MLP_ACCURACY_MIN,
           f"MnistModel(784, {cfg['hidden']}, 10) trained with your fit and loss_fn ({cfg['num_epochs']} "
           f"epochs of SGD, lr {cfg['lr']}, batch {cfg['batch_size']}, on 8,000 MNIST images) reaches "
           f"{acc:.3f} accuracy on held-out images; at least {MLP_ACCURACY_MIN:.2f} is expected.")


# ------------------------------------------------------------------------------------ device_helpers
@pytest.mark.device_helpers
def test_default_device_follows_cuda(student):
    out = student.probe(probe_default_device, label="`get_default_device`")
    expect(out["True"].startswith("cuda"),
           f"get_default_device() returned {out['True']} while a GPU was available; expected torch.device('cuda').")
    expect(out["False"] == "cpu",
           f"get_default_device() returned {out['False']} while no GPU was available; expected "
           "torch.device('cpu'). Ask torch.cuda.is_available() each time.")


@pytest.mark.device_helpers
def test_to_device_moves_and_returns(student):
    out = student.probe(probe_to_device, label="`to_device`")
    one = out["one"]
    expect(one.get("type") == "tensor" and one.get("device") == "meta" and one.get("shape") == (3, 2),
           f"to_device(X, device) should return X moved to device; got {one}. Tensor.to returns a new "
           "tensor: return it.")
    for key, kind in (("pair", "list"), ("tuple", "tuple")):
        value = out[key]
        items = value.get("items")
        expect(items is not None and len(items) == 2
               and all(i.get("type") == "tensor" and i.get("device") == "meta" for i in items),
               f"to_device on a {kind} [X, y] should return a {kind} of both tensors moved to the device; "
               f"got {value}.")
    back = out["back"]
    expect(back is not None, "to_device(X, torch.device('cpu')) should return a tensor.")
    expect_close(back, out["X"], "to_device(X, torch.device('cpu')) for X already on the CPU", rtol=0, atol=0)


@pytest.mark.device_helpers
def test_device_data_loader(student):
    out = student.probe(probe_device_loader, label="`DeviceDataLoader`")
    expect(out["len"] == 3, f"len(DeviceDataLoader(dl, device)) is {out['len']}; it should equal len(dl) = 3 batches.")
    expected = [[((4, 1, 28, 28), "meta"), ((4,), "meta")], [((4, 1, 28, 28), "meta"), ((4,), "meta")],
                [((2, 1, 28, 28), "meta"), ((2,), "meta")]]
    for number, batches in enumerate(out["passes"], start=1):
        expect(len(batches) == 3,
               f"Pass {number} over a DeviceDataLoader gave {len(batches)} batches instead of 3: __iter__ should "
               "start a fresh pass over the wrapped loader every time it is called.")
        devices = sorted({d for batch in batches for item in batch if item for _, d in [item]})
        expect(batches == expected,
               "DeviceDataLoader should yield each batch (X, y) moved to its device; the batches were on "
               f"{', '.join(devices) or 'no device'} instead of the device it was given. Use the tensors "
               "that to_device returns.")
    expect(out["train"] == "ok", f"A model trained on the batches of your DeviceDataLoader failed: {out['train']}.")


# ---------------------------------------------------------------------------------------- loss_batch
@pytest.fixture(scope="module")
def loss_batch_out(student):
    return student.probe(probe_loss_batch, label="`accuracy` / `loss_batch`")


@pytest.mark.loss_batch
def test_accuracy_values(loss_batch_out):
    out = loss_batch_out
    expect_close(out["acc_logits"], 0.625, "accuracy(y_hat, y) for logits with 5 of 8 rows correct", rtol=0, atol=1e-6)
    expect_close(out["acc_logprobs"], 0.625, "accuracy for log-probabilities with 5 of 8 rows correct",
                 rtol=0, atol=1e-6)
    expect_close(out["acc_probs"], 0.8, "accuracy for probabilities with 4 of 5 rows correct", rtol=0, atol=1e-6)


@pytest.mark.loss_batch
def test_loss_batch_without_optimizer(loss_batch_out):
    out = loss_batch_out
    plain = out["plain"]
    expect(plain["len"] == 3, f"loss_batch should return a tuple (loss, n, metric value); it returned a {plain['type']}"
           f"{' of length ' + str(plain['len']) if plain['len'] >= 0 else ''}.")
    expect(plain["loss_type"] == "float",
           f"loss_batch should return the loss as a Python float (loss.item()), not a {plain['loss_type']}: "
           "a tensor keeps its computation graph alive for as long as it is stored.")
    expect_close(plain["loss"], out["expected_loss"], "the loss returned by loss_batch", rtol=1e-5, atol=1e-6)
    expect(plain["n"] == 6, f"loss_batch returned n = {plain['n']} for a batch of 6 examples.")
    expect(plain["value_none"], "Without a metric, loss_batch should return None as its third value.")
    expect(out["unchanged"], "loss_batch without an optimizer must not change the model's parameters.")


@pytest.mark.loss_batch
def test_loss_batch_with_optimizer(loss_batch_out):
    steps = loss_batch_out["steps"]
    for i, (returned, loss, value) in enumerate(zip(steps["returned"], steps["losses"], steps["metrics"]), 1):
        expect_close(returned[0], loss, f"the loss returned by call {i} of loss_batch with an optimizer (the "
                     "loss before that step)", rtol=1e-5, atol=1e-6)
        expect(returned[2] is not None, "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
        expect_close(returned[2], value, f"the metric value returned by call {i}", rtol=0, atol=1e-6)
    for got, want in zip(steps["params"], steps["ref_params"]):
        expect_close(got, want, "the parameters after two calls of loss_batch with an SGD optimizer (one step "
                     "each: zero_grad, backward, step)", rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- evaluate_loop
@pytest.fixture(scope="module")
def evaluate_out(student):
    return student.probe(probe_evaluate, label="`evaluate`")


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
    expect(result["n"] == 23, f"evaluate returned n = {result['n']} for 23 examples in batches of 10, 10 and 3.")
    expect_close(result["loss"], expected["loss"], "the mean loss returned by evaluate (batches of 10, 10 "
                 "and 3 examples, weighted by batch size)", rtol=1e-5, atol=1e-6)
    metric = result["metric"]
    if isinstance(metric, float) and abs(metric - expected["unweighted_metric"]) < 1e-6:
        fail("evaluate averaged the metric over batches without weighting each batch by its size: a batch "
             "of 3 examples counted as much as one of 10.")
    expect(isinstance(metric, float), f"evaluate's 'metric' should be a float when a metric is given, got {metric}.")
    expect_close(metric, expected["metric"], "the mean metric returned by evaluate (weighted by batch size)",
                 rtol=1e-5, atol=1e-6)
    expect(evaluate_out["result_none"].get("metric", "missing") is None,
           "Without a metric, evaluate should return None under 'metric'.")


# ------------------------------------------------------------------------------------------ fit_loop
@pytest.fixture(scope="module")
def fit_out(student):
    return student.probe(probe_fit, label="`fit`")


@pytest.mark.fit_loop
def test_fit_trains_in_train_mode(fit_out):
    train_calls = [c for c in fit_out["calls"] if c[2] in (5, 3)]
    expect(len(train_calls) == 9, f"fit ran the model on {len(train_calls)} training batches; 3 epochs of 3 "
           "batches are 9.")
    expect(all(training for training, _, _ in train_calls),
           "fit trained the model in eval mode: call net.train() at the start of every epoch (evaluate "
           "leaves the model in eval mode, and the model may start in it).")
    expect(all(grad for _, grad, _ in train_calls), "fit ran training batches without gradients.")


@pytest.mark.fit_loop
def test_fit_history(fit_out):
    expect(fit_out["history_type"] == "dict", f"fit should return the history as a dict, not a {fit_out['history_type']}.")
    history = fit_out["history"]
    for key in ("train_loss", "valid_loss", "valid_metric"):
        expect(key in history, f"The history returned by fit has no key '{key}'.")
        entry = history[key]
        expect(entry["type"] == "list" and len(entry["items"]) == 3,
               f"history['{key}'] should be a list with one value per epoch (3 epochs).")
        for item in entry["items"]:
            expect(not item["graph"],
                   f"history['{key}'] holds tensors attached to the computation graph: every stored loss keeps "
                   "the graph of its epoch alive. Store Python floats (loss.item()).")
            expect(item["value"] is not None, f"history['{key}'] should hold numbers.")
        expected = fit_out["expected"][key]
        expect_close(torch.tensor([i["value"] for i in entry["items"]], dtype=torch.float64),
                     torch.tensor(expected, dtype=torch.float64),
                     f"history['{key}'] (per epoch; the training loss weighted by batch size)", rtol=1e-4, atol=1e-6)


@pytest.mark.fit_loop
def test_fit_parameters(fit_out):
    for got, want in zip(fit_out["params"], fit_out["ref_params"]):
        expect_close(got, want, "the parameters after fit (3 epochs, one optimiser step per training batch)",
                     rtol=1e-4, atol=1e-6)
