"""Logistic regression, manual and fast: a stable sigmoid, binary cross-entropy on logits, accuracy.

Conventions: the model returns *logits* z (n, 1) (a linear model, ``course.linear_regression.linreg``);
probabilities are ``sigmoid(z)``; labels y are 0/1, either (n,) int64 class indices as
``course.datasets.make_blobs`` returns them, or (n, 1) floats. The hand-written loss returns one loss
per example, shaped like z, and is summed in the training loop (see ``course.linear_regression``).
"""
import math

import torch
from torch import nn

from course.datasets import minibatches
from course.linear_regression import linreg, sgd
from course.trainer import fit


def sigmoid(z):
    """Logistic function 1 / (1 + exp(-z)), elementwise, finite with finite gradients for any z."""
    positive = z >= 0
    e = torch.exp(torch.where(positive, -z, z))  # exp(-|z|) is in (0, 1]: it never overflows
    return torch.where(positive, 1 / (1 + e), e / (1 + e))


def bce_with_logits(z, y):
    """Per-example binary cross-entropy of logits z against 0/1 labels y, in a stable form.

    z: (n, 1) logits; y: (n,) or (n, 1) labels (any dtype). Returns (n, 1):
    -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) = max(z, 0) - z y + log(1 + exp(-|z|)).
    """
    y = y.reshape(z.shape).to(z.dtype)
    positive = z >= 0
    # max(z, 0) and -|z| written with where: their gradient at z = 0 is then the right one.
    relu = torch.where(positive, z, torch.zeros_like(z))
    minus_abs = torch.where(positive, -z, z)
    return relu - z * y + torch.log1p(torch.exp(minus_abs))


def binary_accuracy(y_hat, y):
    """Fraction of examples whose predicted class (probability y_hat >= 0.5) equals the label y.

    y_hat: (n, 1) or (n,) probabilities; y: (n,) or (n, 1) 0/1 labels. Returns a Python float.
    """
    predicted = (y_hat.reshape(-1) >= 0.5).long()
    return (predicted == y.reshape(-1).long()).float().mean().item()


def grad_norm(params):
    """Euclidean norm of all parameters' gradients taken together (parameters without one are skipped)."""
    total = 0.0
    for param in params:
        if param.grad is not None:
            total += param.grad.detach().double().pow(2).sum().item()
    return math.sqrt(total)


DIAGNOSES = ("healthy", "lr_too_high", "lr_too_low", "no_zero_grad")


def diagnose_training(history):
    """Diagnose a run from history {"train_loss": [float per epoch], "grad_norm": [float per epoch]}.

    Returns "lr_too_high" (some value inf or nan, or the loss ends above its start), else "no_zero_grad"
    (the gradient norm ends above twice its start: gradients pile up in .grad), else "lr_too_low" (the loss
    fell by less than 10%), else "healthy".
    """
    losses, norms = list(history["train_loss"]), list(history["grad_norm"])
    if not all(math.isfinite(v) for v in losses + norms) or losses[-1] > losses[0]:
        return "lr_too_high"
    if norms[-1] > 2 * norms[0]:
        return "no_zero_grad"
    if losses[0] - losses[-1] < 0.1 * losses[0]:
        return "lr_too_low"
    return "healthy"


def train_logreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=bce_with_logits,
                 updater=sgd, generator=None):
    """Train w (d, 1) and b (1,) in place by minibatch SGD on the binary cross-entropy; return the history.

    X: (n, d) float32; y: (n,) int64 0/1 labels. History: {"epoch": [...], "train_loss": mean
    per-example loss over each epoch's batches}.
    """
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, len(X_batch))
            total += l.sum().item()
            count += l.numel()
        history["epoch"].append(epoch)
        history["train_loss"].append(total / count)
    return history


def train_logreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """Train ``nn.Linear(d, 1)`` (logits) with ``nn.BCEWithLogitsLoss`` and ``optim.SGD``; return (net, history).

    X: (n, d) float32; y: (n,) int64 0/1 labels, turned into (n, 1) floats as the loss needs them.
    """
    targets = y.float().reshape(-1, 1)
    net = nn.Linear(X.shape[1], 1)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, targets),
                                         batch_size=batch_size, shuffle=True, generator=generator)
    history = fit(net, loss_fn, optimizer, loader, num_epochs, progress=False)
    return net, history
