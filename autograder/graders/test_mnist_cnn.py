"""Graders for 07-mnist-cnn: the ConvNet, its train() / test() functions, and a single prediction.

Accuracy (task mnist_cnn): the judge loads the MNIST test split (course.data), splits it with seed 0
into 8,000 training and 2,000 held-out images, and sends the first 4,000 training images with their
labels and the held-out images (never their labels) into the student's process. There the student's
``Net`` (built after torch.manual_seed(0)) is trained for one epoch by the student's ``train()`` with the
student's ``make_optimizer``, batch 32, shuffled with seed 0; the grader puts the model in eval mode
itself and returns the predictions; the judge computes the accuracy.

The budget is small on purpose (one torch thread, 4,000 images, one epoch: 125 Adadelta steps), so
that a grading stays within seconds; with it the reference reaches about 0.93 rather than the 0.96 of a
full epoch over 8,000 images.

Calibration (python benchmarks/calibrate_mnist.py --lesson cnn --variants: the probe itself run on the
reference notebook's code, seeds 0-19 in place of seed 0):
  reference                 held-out accuracy min 0.9075, median 0.9260, max 0.9460
                            (training loss min 0.196, median 0.239, max 0.310)
  Adam lr 1e-3              min 0.8955, median 0.9210, max 0.9355
  Dropout2d + Adam lr 1e-3  min 0.8895, median 0.9138, max 0.9305
  dropout without training=self.training (predictions with dropout on): min 0.8290, median 0.8575,
                            max 0.8910, so accuracy does not separate it on every seed; the eval-mode
                            determinism check of the same task does
Threshold: accuracy >= 0.87 (0.0375 below the reference minimum, 0.0195 below the lowest variant).
A run (training and predicting) took a median 14.5 s in the calibration, on 2 cores shared with four
other jobs; one epoch of training alone measured 6.0 s there.
"""

import pytest
import torch

from autograder.checks import expect, expect_close, expect_tensor, fail
from autograder.tasks import Task
from course import data

ASSIGNMENT = "07-mnist-cnn"
TASKS = [
    Task("cnn_train_test", 3, "train() for one epoch with logging, test() in eval mode"),
    Task("mnist_cnn", 4, "The ConvNet and its optimiser, trained with train()"),
    Task("predict_image", 1, "The predicted class of one image"),
]

CNN_ACCURACY_MIN = 0.87
CNN_TRAINING = {"n_train": 4000, "batch_size": 32, "seed": 0}
CNN_PARAMETERS = 300_426
MNIST_MEAN, MNIST_STD = data.MNIST_MEAN[0], data.MNIST_STD[0]


# ------------------------------------------------------------------------------------------ probes
def probe_cnn_structure(ns):
    """Shapes, log-probabilities, parameters, dropout modes, per-image independence, meta device."""
    import torch
    Net = ns.require("Net", kind="class")
    out = {}
    torch.manual_seed(0)
    net = Net()
    out["module"] = isinstance(net, torch.nn.Module)
    if not out["module"]:
        return out
    out["params"] = sum(p.numel() for p in net.parameters())
    X = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    net.eval()
    with torch.no_grad():
        out["eval_1"] = net(X)
        out["eval_2"] = net(X)
        out["single"] = net(X[:1])
        out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(5)])
    net.train()
    with torch.no_grad():
        torch.manual_seed(2)
        out["train_1"] = net(X)
        out["train_2"] = net(X)
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


def probe_cnn_training(ns, X_train, y_train, X_test, batch_size, seed, mean, std):
    """One epoch of the student's train() on the student's Net; predictions for the held-out images."""
    import contextlib
    import io
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")
    train = ns.require("train")

    def normalize(images):
        return ((images.float() / 255 - mean) / std).unsqueeze(1)

    Xtr, Xte = normalize(X_train), normalize(X_test)
    torch.manual_seed(seed)
    net = Net()
    optimizer = make_optimizer(net)
    loader = DataLoader(TensorDataset(Xtr, y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    with contextlib.redirect_stdout(io.StringIO()):
        train(net, torch.device("cpu"), loader, optimizer, 1)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(Xte[i:i + 500]).argmax(dim=1) for i in range(0, len(Xte), 500)])
        log_probs = net(Xtr[:1000])
        loss = float(-log_probs.gather(1, y_train[:1000].reshape(-1, 1)).mean())
    return {"pred": pred, "train_loss": loss}


def probe_train(ns, log_interval):
    """train() for one epoch of 6 batches on a recording model, from eval mode, against a reference loop."""
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
    X = torch.randn(48, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (48,), generator=gen)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    torch.manual_seed(0)
    net = Recorder()
    ref = copy.deepcopy(net)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses = []
    for a, b in loader:
        ref_opt.zero_grad()
        loss = F.nll_loss(ref(a), b)
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
    ref.calls.clear()
    net.eval()                                     # train() must switch to train mode itself
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = train(net, torch.device("cpu"), loader, torch.optim.SGD(net.parameters(), lr=0.1), 1, log_interval)
    lines = [line for line in printed.getvalue().splitlines() if line.strip()]
    return {"calls": net.calls, "lines": len(lines),
            "result": float(result) if isinstance(result, (int, float, torch.Tensor)) and not isinstance(result, bool)
            else None, "result_type": type(result).__name__, "expected_loss": sum(losses) / len(losses),
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
        per_batch = [((log_probs[s].argmax(dim=1) == y[s]).float().mean().item())
                     for s in (slice(0, 8), slice(8, 16), slice(16, 20))]
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.train()
    with contextlib.redirect_stdout(io.StringIO()):
        result = test(net, torch.device("cpu"), loader)
    ok = isinstance(result, (tuple, list)) and len(result) == 2
    return {"calls": net.calls, "ok": ok, "type": type(result).__name__,
            "loss": float(result[0]) if ok else None, "acc": float(result[1]) if ok else None,
            "expected_loss": expected_loss, "expected_acc": expected_acc,
            "unweighted_acc": sum(per_batch) / 3}


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
        got.append([type(value).__name__, int(value) if isinstance(value, int)
                    or (isinstance(value, torch.Tensor) and value.numel() == 1) else None])
    return {"got": got, "expected": expected, "calls": net.calls}


# ----------------------------------------------------------------------------------------- mnist_cnn
@pytest.fixture(scope="module")
def cnn_structure(student):
    return student.probe(probe_cnn_structure, label="`Net`")


@pytest.mark.mnist_cnn
def test_cnn_parameters(cnn_structure):
    out = cnn_structure
    expect(out["module"], "Net() should be an nn.Module (a subclass, or an nn.Sequential).")
    expect(out["params"] == CNN_PARAMETERS,
           f"Net has {out['params']:,} trainable parameters; the architecture described has {CNN_PARAMETERS:,}. "
           "Create every layer in __init__ (layers made inside forward are not registered, and new at "
           "every call), with the sizes of the table.")


@pytest.mark.mnist_cnn
def test_cnn_output_log_probabilities(cnn_structure):
    out = cnn_structure
    expect(out["module"], "Net() should be an nn.Module.")
    y_hat = expect_tensor(out["eval_1"], "Net()(X) for X of shape (5, 1, 28, 28)", shape=(5, 10),
                          dtype=torch.float32, finite=True)
    expect_tensor(out["single"], "Net()(X) for one image of shape (1, 1, 28, 28)", shape=(1, 10))
    expect_close(y_hat.double().exp().sum(dim=1), torch.ones(5, dtype=torch.float64),
                 "exp of each output row (log-probabilities: the probabilities sum to 1)", rtol=0, atol=1e-4)
    expect(bool((y_hat <= 1e-6).all()), "Log-probabilities cannot be positive (tolerance 1e-6): end forward with "
           "F.log_softmax(X, dim=1).")


@pytest.mark.mnist_cnn
def test_cnn_keeps_the_batch(cnn_structure):
    out = cnn_structure
    expect(out["module"], "Net() should be an nn.Module.")
    expect_tensor(out["eval_1"], "Net()(X) for X of shape (5, 1, 28, 28)", shape=(5, 10))
    expect_close(out["rows"], out["eval_1"], "the outputs for images one at a time compared with the whole "
                 "batch, in eval mode (flatten from dimension 1, keep the batch dimension)", rtol=1e-4, atol=1e-5)


@pytest.mark.mnist_cnn
def test_cnn_dropout_modes(cnn_structure):
    out = cnn_structure
    expect(out["module"], "Net() should be an nn.Module.")
    expect_tensor(out["eval_1"], "Net()(X)", shape=(5, 10))
    expect_close(out["eval_2"], out["eval_1"], "two calls on the same batch in eval mode (dropout must be off "
                 "after net.eval(): use nn.Dropout or F.dropout(..., training=self.training))", rtol=1e-5, atol=1e-6)
    gap = (out["train_1"].double() - out["train_2"].double()).abs().max().item()
    expect(gap > 1e-4, "Two calls on the same batch in train mode gave the same output (within 1e-4): "
           "dropout should be active after net.train().")


@pytest.mark.mnist_cnn
def test_cnn_runs_on_any_device(cnn_structure):
    out = cnn_structure
    expect(out["module"], "Net() should be an nn.Module.")
    meta = out["meta"]
    if "error" in meta:
        fail("Net should run forward and backward on whatever device it and the batch are on (checked on a "
             f"device other than the CPU), but it raised {meta['error']}. Create layers in __init__ and no "
             "tensors on a fixed device inside forward.")
    expect(meta["device"] == "meta" and meta["shape"] == (3, 10) and meta["grads"],
           f"On another device, Net's output and gradients should stay there (output on {meta['device']}, "
           f"shape {meta['shape']}).")


@pytest.mark.mnist_cnn
def test_cnn_trains_to_accuracy(student):
    X_train, y_train, X_test, y_test = data.mnist_test_split_tensors(2000, seed=0)
    cfg = CNN_TRAINING
    n = cfg["n_train"]
    out = student.probe(probe_cnn_training, X_train[:n], y_train[:n], X_test, cfg["batch_size"], cfg["seed"],
                        MNIST_MEAN, MNIST_STD, timeout=180, label="training Net with your train()")
    pred = expect_tensor(out["pred"], "the predictions for the held-out images", shape=(len(X_test),))
    acc = (pred.long() == y_test).double().mean().item()
    expect(acc >= CNN_ACCURACY_MIN,
           f"Net trained for one epoch by your train() with your make_optimizer (batch {cfg['batch_size']}, "
           f"{n:,} MNIST images) reaches {acc:.3f} accuracy on held-out images; at least "
           f"{CNN_ACCURACY_MIN:.2f} is expected.")


# ------------------------------------------------------------------------------------ cnn_train_test
@pytest.fixture(scope="module")
def train_out(student):
    return student.probe(probe_train, 2, label="`train`")


@pytest.mark.cnn_train_test
def test_train_mode_and_steps(train_out):
    calls = train_out["calls"]
    expect(len(calls) == 6, f"train ran the model on {len(calls)} batches; the epoch had 6.")
    expect(all(training for training, _, _ in calls),
           "train ran the model in eval mode: call net.train() at its start (test leaves the model in eval "
           "mode, and dropout must be on while training).")
    expect(all(grad for _, grad, _ in calls), "train ran the model without gradients.")
    for got, want in zip(train_out["params"], train_out["ref_params"]):
        expect_close(got, want, "the parameters after one epoch of train (one optimiser step per batch on "
                     "F.nll_loss: zero_grad, backward, step)", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_logs_and_returns_loss(train_out):
    lines = train_out["lines"]
    expect(2 <= lines <= 4, f"With log_interval=2 over 6 batches, train printed {lines} lines; about one every "
           "log_interval batches (batch_idx % log_interval == 0) is expected.")
    expect(train_out["result"] is not None,
           f"train should return the epoch's mean training loss as a float, not a {train_out['result_type']}.")
    expect_close(train_out["result"], train_out["expected_loss"], "the mean training loss returned by train",
                 rtol=1e-4, atol=1e-6)


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
    acc = test_out["acc"]
    if 1.0 < acc <= 100.0:
        fail(f"test returned accuracy {acc:g}: return a fraction in [0, 1], not a percentage.")
    if abs(acc - test_out["unweighted_acc"]) < 1e-6:
        fail("test averaged the accuracy over batches: divide by the number of images, so that the small "
             "last batch does not count as much as a full one.")
    expect_close(acc, test_out["expected_acc"], "the accuracy returned by test (correct predictions / images)",
                 rtol=0, atol=1e-6)
    expect_close(test_out["loss"], test_out["expected_loss"], "the mean loss returned by test (summed loss / "
                 "images)", rtol=1e-4, atol=1e-6)


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
