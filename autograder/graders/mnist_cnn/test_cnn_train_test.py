"""Checks of task `cnn_train_test`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail
from autograder.sandbox.inside.probing import recording_net

from .probes import probe_on_meta, probe_test, probe_train
from .reference import TEST_STATE, TRAIN_EPOCHS, TRAIN_STATE, device_failure


def _test_data():
    """20 images in batches of 8, 8, 4: the two full batches nearly all wrong, the small last batch all right
    (for the model in eval mode); and the expected (loss, accuracy), over images and over batches."""
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(20, 1, 28, 28, generator=gen)
    with torch.no_grad():
        log_probs = recording_net(TEST_STATE).eval()(X)
    best = log_probs.argmax(dim=1)
    y = (best + 1) % 10
    y[0], y[9] = best[0], best[9]
    y[16:] = best[16:]
    parts = (slice(0, 8), slice(8, 16), slice(16, 20))
    expected = {"loss": F.nll_loss(log_probs, y).item(), "acc": (best == y).double().mean().item(),
                "batch_loss": sum(F.nll_loss(log_probs[s], y[s]).item() for s in parts) / 3,
                "batch_acc": sum((best[s] == y[s]).double().mean().item() for s in parts) / 3}
    return X, y, expected


def _train_replay(X, y):
    """The state after one epoch of a correct train() (train mode, SGD lr 0.1), and the batch losses and sizes."""
    import torch.nn.functional as F
    net = recording_net(TRAIN_STATE)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    losses, sizes = [], []
    for start in range(0, len(X), 8):
        xb, yb = X[start:start + 8], y[start:start + 8]
        optimizer.zero_grad()
        loss = F.nll_loss(net(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(xb))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, losses, sizes


def _train_data():
    """44 images in batches of 8, 8, 8, 8, 8, 4; the small last batch gets the labels the model finds least
    likely, so that a mean over batches differs from the mean over images."""
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(44, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (44,), generator=gen)
    with torch.no_grad():
        y[40:] = recording_net(TRAIN_STATE).eval()(X[40:]).argmin(dim=1)
    return X, y


@pytest.fixture(scope="module")
def test_out_single_last(student):
    """test on the first 17 of those images: batches of 8, 8 and one image."""
    import torch.nn.functional as F
    X, y, _ = _test_data()
    X, y = X[:17], y[:17]
    with torch.no_grad():
        log_probs = recording_net(TEST_STATE).eval()(X)
    out = student.probe(probe_test, TEST_STATE, X, y,
                        label="`test` on 17 images in batches of 8, 8 and 1 (X of shape (1, 1, 28, 28) last)")
    out["expected"] = {"loss": F.nll_loss(log_probs, y).item(),
                       "acc": (log_probs.argmax(dim=1) == y).double().mean().item()}
    return out


@pytest.fixture(scope="module")
def test_out(student):
    X, y, expected = _test_data()
    out = student.probe(probe_test, TEST_STATE, X, y, label="`test`")
    out["expected"] = expected
    return out


@pytest.fixture(scope="module")
def train_out_edges(student):
    """train on 41 images (batches of 8, the last of one image) with log_interval=100, beyond the epoch."""
    X, y = _train_data()
    out = student.probe(probe_train, TRAIN_STATE, X[:41], y[:41], 100, TRAIN_EPOCHS[1],
                        label=f"`train` with log_interval=100 and epoch={TRAIN_EPOCHS[1]} on 41 images in batches "
                              "of 8 (X of shape (1, 1, 28, 28) last)")
    out["replay"] = _train_replay(X[:41], y[:41])
    return out


@pytest.fixture(scope="module")
def train_out(student):
    X, y = _train_data()
    out = student.probe(probe_train, TRAIN_STATE, X, y, 2, TRAIN_EPOCHS[0], label="`train`")
    out["replay"] = _train_replay(X, y)
    return out


def _names_epoch(lines, epoch):
    """Whether a printed line holds ``epoch`` as a number of its own (zero-padding allowed)."""
    import re
    return any(re.search(rf"(?<![\d.])0*{epoch}(?![\d])", line) for line in lines)


def _number(item):
    """A returned value (``plain`` in the probes) as a float, or None when it is not a number."""
    value = item["value"]
    if isinstance(value, torch.Tensor):
        return float(value.double()) if value.numel() == 1 else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@pytest.mark.cnn_train_test
def test_train_mode_and_steps(train_out):
    shapes = train_out["shapes"]
    expect(len(shapes) == 6, f"train ran the model on {len(shapes)} batches; the epoch had 6.")
    state = train_out["state"]
    expect(not torch.equal(state["norm.running_mean"], TRAIN_STATE["norm.running_mean"]),
           "train ran the model in eval mode: call net.train() at its start (test leaves the model in eval "
           "mode, and dropout must be on while training).")
    expect(any(graph is not None for graph in train_out["graphs"]), "train ran the model without gradients.")
    want, _, _ = train_out["replay"]
    for name, value in want.items():
        if name.startswith("linear.") or name in ("norm.weight", "norm.bias"):
            expect_close(state[name], value, "the parameters after one epoch of train (one step of the optimizer "
                         "it is given per batch on F.nll_loss(net(X), y): zero_grad, backward, step)",
                         rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_logs_and_returns_loss(train_out):
    n = train_out["n_lines"]
    expect(2 <= n <= 4, f"With log_interval=2 over 6 batches, train printed {n} lines; one every "
           "log_interval batches (batch_idx % log_interval == 0) is expected.")
    expect(_names_epoch(train_out["lines"], TRAIN_EPOCHS[0]),
           f"train's log lines should name the epoch it is given (it was called with epoch={TRAIN_EPOCHS[0]}; "
           "no printed line holds that number).")
    returned = train_out["result"]
    result = _number(returned)
    expect(result is not None,
           f"train should return the epoch's mean training loss as a Python float, not a {returned['type']}.")
    expect(isinstance(returned["value"], float), f"train should return the mean training loss as a Python float "
           f"(sum loss.item() values), not a {returned['type']}.")
    _, losses, sizes = train_out["replay"]
    weighted = sum(l * s for l, s in zip(losses, sizes)) / sum(sizes)
    unweighted = sum(losses) / len(losses)
    if abs(result - unweighted) <= 1e-6 + 1e-4 * abs(unweighted) < abs(result - weighted):
        fail("train averaged the loss over batches: weight each batch's loss by its number of images and "
             "divide by the number of images, so that a small last batch does not count as much as a full one.")
    expect_close(result, weighted, "the mean training loss returned by train (each batch's loss.item() times "
                 "its number of images, summed, divided by the number of images)", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_train_edges(train_out_edges):
    out = train_out_edges
    expect(len(out["shapes"]) == 6, f"train ran the model on {len(out['shapes'])} batches; 41 images in batches "
           "of 8 are 6 batches, the last of one image.")
    expect(out["n_lines"] >= 1,
           "With log_interval=100 and an epoch of 6 batches, train printed nothing; the first batch (batch_idx 0, "
           "and 0 % log_interval == 0) should print its line.")
    state, (want, losses, sizes) = out["state"], out["replay"]
    for name, value in want.items():
        if name.startswith("linear.") or name in ("norm.weight", "norm.bias"):
            expect_close(state[name], value, "the parameters after one epoch of train on 41 images (the last batch "
                         "holds one image: keep its batch dimension, no squeeze)", rtol=1e-4, atol=1e-6)
    result = _number(out["result"])
    expect(result is not None, f"train should return the epoch's mean training loss as a Python float, not a "
           f"{out['result']['type']}.")
    expect_close(result, sum(l * s for l, s in zip(losses, sizes)) / sum(sizes), "the mean training loss returned "
                 "by train for 41 images (batches of 8, the last of one image; weighted by batch size)",
                 rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_test_last_batch_of_one(test_out_single_last):
    returned = test_out_single_last["result"]
    items = returned["items"]
    expect(items is not None and len(items) == 2 and None not in (_number(items[0]), _number(items[1])),
           "test should return (mean loss, accuracy) as two numbers (see the other message).")
    loss, acc = _number(items[0]), _number(items[1])
    expected = test_out_single_last["expected"]
    what = "17 images in batches of 8, 8 and 1 (keep the batch dimension of the last batch: no squeeze)"
    expect_close(acc, expected["acc"], f"the accuracy returned by test for {what}", rtol=0, atol=1e-6)
    expect_close(loss, expected["loss"], f"the mean loss returned by test for {what}", rtol=1e-4, atol=1e-6)


@pytest.mark.cnn_train_test
def test_test_mode_and_no_grad(test_out):
    shapes = test_out["shapes"]
    expect(len(shapes) >= 3, f"test called the model {len(shapes)} times for 3 batches.")
    state = test_out["state"]
    expect(torch.equal(state["norm.running_mean"], TEST_STATE["norm.running_mean"])
           and torch.equal(state["norm.running_var"], TEST_STATE["norm.running_var"]),
           "test ran the model in training mode: call net.eval() first (dropout would still drop).")
    expect(all(graph is None for graph in test_out["graphs"]),
           "test ran the model with gradients enabled: use torch.no_grad().")


@pytest.mark.cnn_train_test
def test_test_averages(test_out):
    returned = test_out["result"]
    items = returned["items"]
    expect(items is not None and len(items) == 2,
           f"test should return (mean loss, accuracy), not a {returned['type']}"
           f"{' of ' + str(len(items)) + ' values' if items is not None else ''}.")
    loss, acc = _number(items[0]), _number(items[1])
    types = [item["type"] for item in items]
    expect(acc is not None and loss is not None,
           f"test should return two numbers (mean loss, accuracy), not {types}.")
    expected = test_out["expected"]
    if 1.0 < acc <= 100.0:
        fail(f"test returned accuracy {acc:g}: return a fraction in [0, 1], not a percentage.")
    if abs(acc - expected["batch_acc"]) < 1e-6 or abs(loss - expected["batch_loss"]) < 1e-6:
        fail("test averaged over batches: divide the summed loss and the number of correct predictions by "
             "the number of images, so that the small last batch does not count as much as a full one.")
    expect_close(acc, expected["acc"], "the accuracy returned by test (correct predictions / images)",
                 rtol=0, atol=1e-6)
    expect_close(loss, expected["loss"], "the mean loss returned by test (summed loss / "
                 "images)", rtol=1e-4, atol=1e-6)
    expect(all(isinstance(item["value"], float) for item in items),
           f"test should return Python floats (use .item() on tensors), not ({', '.join(types)}).")
    expect(test_out["n_lines"] >= 1, "test should print one line with the mean loss and the accuracy.")


@pytest.mark.cnn_train_test
def test_train_and_test_follow_the_device(student):
    fix = ("Move each batch with X, y = X.to(device), y.to(device): Tensor.to returns a new tensor and does "
           "not move X itself.")
    device_failure("train", student.probe(probe_on_meta, "train", label="`train`"), fix)
    device_failure("test", student.probe(probe_on_meta, "test", label="`test`"), fix)
