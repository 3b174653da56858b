"""Checks of task `mnist_cnn`."""
import os

import pytest
import torch

from autograder.judge import heldout
from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from course import data

from .probes import probe_cnn_structure, probe_cnn_training, probe_optimizer
from .reference import (ADADELTA, CNN_ACCURACY_MIN, CNN_DROPOUT_SCHEDULES, CNN_PARAMETERS, CNN_SHAPES, CNN_TRAINING,
                        HELDOUT_DISGUISE, LARGE_INPUT, MNIST_MEAN, MNIST_STD, STRUCTURE_X, TABLE_X)


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


def _shapes(out):
    return sorted(tuple(t.shape) for _, t in out["named"])


def table_forward(weights, X):
    """The table's ConvNet in eval mode with ``weights``: X (N, 1, 28, 28) -> (N, 10) log-probabilities."""
    import torch.nn.functional as F
    w1, b1, w2, b2, w3, b3, w4, b4 = weights
    X = F.relu(F.conv2d(X, w1, b1))
    X = F.max_pool2d(F.relu(F.conv2d(X, w2, b2)), 2)
    X = F.relu(F.linear(torch.flatten(X, 1), w3, b3))
    return F.log_softmax(F.linear(X, w4, b4), dim=1)


def table_weights(seed=11):
    """Fixed parameters of the table's ConvNet: a list of tensors, one per shape of CNN_SHAPES."""
    gen = torch.Generator().manual_seed(seed)
    weights = []
    for shape in CNN_SHAPES:
        fan_in = shape[1] * 9 if len(shape) == 4 else shape[1] if len(shape) == 2 else 100
        weights.append(torch.randn(shape, generator=gen) / fan_in ** 0.5)
    return weights


def normalize(images):
    """images: (N, 28, 28) uint8. Returns (N, 1, 28, 28) float32, normalised as the lesson does."""
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


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


@pytest.fixture(scope="module")
def heldout_secret():
    """One secret per grading for the disguise of the held-out images (never sent to the student)."""
    return heldout.grading_secret()


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


def _rates_match(active, schedule):
    return len(active) == len(schedule) and all(abs(p - q) <= 1e-3 and f == g
                                                for (p, f), (q, g) in zip(active, schedule))


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


def _module(out):
    """The named parameters of Net(), after checking that it has them (as an nn.Module does)."""
    if "error" in out:
        fail(f"Net() should be an nn.Module (a subclass, or an nn.Sequential), not a {out['type']}: its "
             f"parameters cannot be listed ({out['error']}).")
    return out["named"]


@pytest.fixture(scope="module")
def cnn_structure(student):
    return student.probe(probe_cnn_structure, table_weights(), TABLE_X, STRUCTURE_X, LARGE_INPUT, label="`Net`")


def heldout_inputs(images, secret):
    """images: (N, 28, 28) uint8 held-out images. Returns what the student's process receives:
    (N, 1, 28, 28) float32, normalised and disguised with ``secret`` (HELDOUT_DISGUISE)."""
    return heldout.disguise(normalize(images), secret, **HELDOUT_DISGUISE)


def grading_seed():
    """Seed of the graders' training run (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


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
