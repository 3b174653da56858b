"""Linear regression, manual and fast: the model, the squared loss, minibatch SGD, the training loops.

Conventions (reused by later lessons):
- parameters are leaf tensors that require grad: ``w`` (d, 1) and ``b`` (1,);
- a hand-written loss returns one loss per example, shaped like ``y_hat``; the training loop sums it
  before ``backward()``, and ``sgd(params, lr, batch_size)`` divides by the batch size, so the step
  follows the gradient of the batch's *mean* loss;
- training functions return a history dict ``{"epoch": [...], "train_loss": [...]}`` (see
  ``course.trainer.fit``), so ``course.plotting.plot_history`` can draw it.
"""
import torch
from torch import nn

from course.datasets import minibatches


def init_linreg_params(num_inputs, sigma=0.01, generator=None):
    """Return leaf parameters w (num_inputs, 1) ~ N(0, sigma^2) and b (1,) = 0, both requiring grad."""
    w = torch.normal(0.0, sigma, size=(num_inputs, 1), generator=generator, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    return w, b


def linreg(X, w, b):
    """The linear model y_hat = X w + b. X: (n, d), w: (d, 1), b: (1,); returns y_hat (n, 1)."""
    return X @ w + b


def squared_loss(y_hat, y):
    """Per-example squared loss (y_hat - y)^2 / 2, shaped like y_hat; y may be (n,) or (n, 1)."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch SGD step in place: p <- p - lr * p.grad / batch_size for each p, then zero p.grad.

    Works on leaf tensors that require grad: the update runs under ``torch.no_grad()``, so the same
    tensor objects stay leaves and keep ``requires_grad``. Parameters without a gradient are skipped.
    """
    with torch.no_grad():
        for param in params:
            if param.grad is None:
                continue
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def train_linreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=squared_loss,
                 updater=sgd, generator=None):
    """Train w (d, 1) and b (1,) in place by minibatch SGD; return the history.

    X: (n, d) float32 features; y: (n, 1) float32 targets. Each step: per-example losses of a batch,
    summed, backward, ``updater([w, b], lr, batch_size)``. History: {"epoch": [1..num_epochs],
    "train_loss": mean per-example loss over each epoch's batches}.
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


def train_linreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """Train ``nn.Linear(d, 1)`` with ``nn.MSELoss`` and ``optim.SGD``; return (net, history).

    X: (n, d) float32; y: (n, 1) float32. Batches from a shuffling ``DataLoader`` (its ``generator``
    makes the order reproducible). History as in ``train_linreg`` ("train_loss" is the mean MSE).
    """
    net = nn.Linear(X.shape[1], 1)
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size,
                                         shuffle=True, generator=generator)
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total, count = 0.0, 0
        for X_batch, y_batch in loader:
            l = loss_fn(net(X_batch), y_batch)
            optimizer.zero_grad()
            l.backward()
            optimizer.step()
            total += l.item() * len(X_batch)
            count += len(X_batch)
        history["epoch"].append(epoch)
        history["train_loss"].append(total / count)
    return net, history
