"""The course's ready-made trainer, used as a finished tool in lessons 02-05: accuracy, loss_batch, evaluate, fit.

Every batch's loss and metric are turned into Python floats as they come (``.item()``), which is simple and
costs nothing on a CPU. Lesson 06 has students write the device-side loop (finished in ``course.training``,
from lesson 07 on), which keeps the running sums on the GPU and reads them once per pass.

Vocabulary: ``net`` a model, ``loss_fn`` a loss taking ``(y_hat, y)``, ``X, y`` a batch,
``y_hat`` the model's output, ``train_iter`` / ``valid_iter`` iterables of ``(X, y)`` batches.
Training functions return a history; plotting and logging are separate and injected.
"""
import torch

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency, but keep training usable without it
    tqdm = None


def accuracy(y_hat, y):
    """Fraction of rows whose highest score is the true class.

    y_hat: (N, C) scores (logits, probabilities or log-probabilities); y: (N,) int64 class indices.
    """
    if y_hat.ndim != 2:
        raise ValueError(f"accuracy expects y_hat of shape (N, C), got {tuple(y_hat.shape)}")
    y = y.reshape(-1)
    return (y_hat.argmax(dim=1) == y).float().mean().item()


def loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
    """Loss (and metric) of one batch; takes an optimiser step when ``optimizer`` is given.

    Returns (loss: float, n: int batch size, metric value: float or None).
    """
    y_hat = net(X)
    loss = loss_fn(y_hat, y)
    if optimizer is not None:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    value = metric(y_hat, y) if metric is not None else None
    return loss.item(), len(X), value


def evaluate(net, loss_fn, data_iter, metric=None):
    """Mean loss (and metric) over ``data_iter``, weighted by batch size, in eval mode without gradients.

    Returns {"loss": float, "metric": float or None, "n": int}. The model's mode is restored afterwards.
    """
    was_training = net.training
    net.eval()
    total_loss, total_metric, total_n = 0.0, 0.0, 0
    with torch.no_grad():
        for X, y in data_iter:
            loss, n, value = loss_batch(net, loss_fn, X, y, metric=metric)
            total_loss += loss * n
            total_n += n
            if value is not None:
                total_metric += value * n
    net.train(was_training)
    if total_n == 0:
        raise ValueError("evaluate got an empty data_iter")
    return {
        "loss": total_loss / total_n,
        "metric": total_metric / total_n if metric is not None else None,
        "n": total_n,
    }


def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None,
        callbacks=(), progress=True):
    """Train ``net`` for ``num_epochs`` and return the history.

    History: dict of lists keyed "epoch", "train_loss" and, with ``valid_iter``, "valid_loss" and
    (with ``metric``) "valid_metric". ``train_loss`` is the batch-size-weighted mean over the epoch.
    Each callback is called as ``callback(epoch, record)`` after every epoch, where ``record`` is
    that epoch's dict of values; use callbacks for logging (TensorBoard, printing).
    """
    history = {"epoch": [], "train_loss": []}
    epochs = range(1, num_epochs + 1)
    bar = tqdm(epochs, desc="epochs", leave=False) if (progress and tqdm is not None) else None
    for epoch in (bar if bar is not None else epochs):
        net.train()
        total_loss, total_n = 0.0, 0
        for X, y in train_iter:
            loss, n, _ = loss_batch(net, loss_fn, X, y, optimizer=optimizer)
            total_loss += loss * n
            total_n += n
        record = {"epoch": epoch, "train_loss": total_loss / max(total_n, 1)}
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric=metric)
            record["valid_loss"] = result["loss"]
            if metric is not None:
                record["valid_metric"] = result["metric"]
        net.train()
        for key, value in record.items():
            history.setdefault(key, []).append(value)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch"})
        for callback in callbacks:
            callback(epoch, record)
    return history
