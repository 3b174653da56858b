"""Checks of task `mnist_mlp`."""
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, expect_tensor, fail
from autograder.judge.heldout import disguise, grading_secret
from course import data

from .probes import probe_mlp_structure, probe_mlp_training
from .reference import (EXTREME_LABELS, EXTREME_SCORES, HELDOUT_DISGUISE, LARGE_INPUT, MLP_ACCURACY_MIN, MLP_LOSS_MAX,
                        MLP_TRAINING, MNIST_MEAN, MNIST_STD, _seed, grading_seed)


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


def normalize(images):
    """images: (N, 28, 28) uint8 -> (N, 1, 28, 28) float32, normalised with the MNIST mean and std."""
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


@pytest.fixture(scope="module")
def heldout_secret():
    """The disguise secret of this grading (drawn in the judge, never sent to the student's process)."""
    return grading_secret()


def _value_in_words(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return f"{value.item():g}"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


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


def _log_probs(y_hat, kind):
    """Log-probabilities of the distribution an output of ``kind`` represents (float64)."""
    if kind == "probabilities":
        return y_hat.clamp_min(1e-300).log()
    return torch.log_softmax(y_hat, dim=1)


@pytest.fixture(scope="module")
def mlp_structure(student):
    return student.probe(probe_mlp_structure, _seed(0), EXTREME_SCORES, F.log_softmax(EXTREME_SCORES, dim=1),
                         EXTREME_LABELS, LARGE_INPUT, label="`MnistModel`")


def heldout_inputs(images, secret):
    """The held-out images as the student's process sees them: normalised, then disguised by ``secret``."""
    return disguise(normalize(images), secret, **HELDOUT_DISGUISE)


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
