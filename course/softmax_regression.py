"""Softmax regression: softmax, log-softmax and cross-entropy in a numerically stable form, and the model.

Vocabulary: ``O`` logits (unnormalised scores) of shape (N, C), ``y`` class indices of shape (N,) int64,
``W`` weights (d, C), ``b`` bias (C,). Every function works on any floating dtype and keeps it.
"""
import torch


def softmax(O):
    """Row-wise softmax of logits O (N, C) -> probabilities (N, C), stable for large |O|, O unchanged.

    Subtracting each row's maximum changes nothing mathematically (softmax is shift-invariant) but keeps
    every exponent <= 0, so ``exp`` cannot overflow.
    """
    shift = O.max(dim=1, keepdim=True).values
    O_exp = torch.exp(O - shift)
    return O_exp / O_exp.sum(dim=1, keepdim=True)


def log_softmax(O):
    """Row-wise log-softmax of logits O (N, C) -> log-probabilities (N, C), via log-sum-exp."""
    shift = O.max(dim=1, keepdim=True).values
    shifted = O - shift
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def cross_entropy(O, y):
    """Mean cross-entropy of logits O (N, C) against class indices y (N,) int64 -> 0-dim tensor.

    Computed from logits as ``logsumexp(o) - o_y`` per row, never as ``-log(softmax(o)[y])``, which
    underflows to ``log(0) = -inf`` when a logit is far below the others.
    """
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"class labels y must be integers (int64), got {y.dtype}")
    if y.ndim != 1 or O.ndim != 2 or y.shape[0] != O.shape[0]:
        raise ValueError(f"expected O of shape (N, C) and y of shape (N,), got {tuple(O.shape)} and "
                         f"{tuple(y.shape)}")
    log_probs = log_softmax(O)
    return -log_probs[torch.arange(O.shape[0], device=O.device), y.long()].mean()


def init_softmax_params(num_inputs, num_outputs, sigma=0.01, generator=None):
    """Weights W (num_inputs, num_outputs) ~ N(0, sigma^2) and zero bias b (num_outputs,), both leaves."""
    W = (torch.randn(num_inputs, num_outputs, generator=generator) * sigma).requires_grad_()
    b = torch.zeros(num_outputs, requires_grad=True)
    return W, b


def softmax_regression(X, W, b):
    """Logits of softmax regression: X (N, d) @ W (d, C) + b (C,) -> O (N, C); no softmax applied."""
    return X @ W + b


def train_softmax(W, b, X, y, lr, num_epochs, batch_size, generator=None):
    """Train W (d, C) and b (C,) in place by minibatch SGD on the mean cross-entropy; return the history.

    X: (n, d) float32 features; y: (n,) int64 class indices. Each step: logits of a batch, mean
    cross-entropy, backward, ``sgd([W, b], lr, 1)`` (the loss is already a batch mean, so the step is
    not divided by the batch size again). History: {"epoch": [1..num_epochs], "train_loss": mean
    cross-entropy over each epoch's examples}.
    """
    from course.datasets import minibatches
    from course.linear_regression import sgd

    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            loss = cross_entropy(softmax_regression(X_batch, W, b), y_batch)
            loss.backward()
            sgd([W, b], lr, 1)
            total += loss.item() * len(X_batch)
            count += len(X_batch)
        history["epoch"].append(epoch)
        history["train_loss"].append(total / count)
    return history


def softmax_net(num_inputs, num_outputs):
    """Softmax regression as a module: (N, num_inputs) -> logits (N, num_outputs); no softmax layer.

    ``nn.CrossEntropyLoss`` applies log-softmax itself, so the model outputs raw logits.
    """
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_outputs))


def train_softmax_fast(X, y, num_classes, lr, num_epochs, batch_size, device=None, generator=None):
    """Train ``softmax_net`` with ``nn.CrossEntropyLoss`` and ``optim.SGD`` on ``device``; return (net, history).

    X: (n, d) float32; y: (n,) int64. ``device=None`` picks CUDA when available, else the CPU; the
    returned net lives on that device. History as returned by ``course.trainer.fit``.
    """
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from course.trainer import fit

    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = softmax_net(X.shape[1], num_classes).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    train_iter = DataLoader(TensorDataset(X.to(device), y.to(device)), batch_size=batch_size, shuffle=True,
                            generator=generator)
    history = fit(net, loss_fn, optimizer, train_iter, num_epochs, progress=False)
    return net, history
