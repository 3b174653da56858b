"""Judge-side checks of what a training loop gave back, shared by the graders of the lessons that write one:
its history, the parameters it trained in place, and the optimizer's start. Every tolerance is stated in the
message it fails with."""
import math

import torch

from autograder.judge.checks import expect, expect_tensor


def kind(value):
    """How a value that came back is named in messages: "a tuple of 3 values", "a dict", "None"."""
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    return f"a {type(value).__name__}"


def history_losses(history, what):
    """The numbers of history['train_loss'] from a history that came back, or fail."""
    expect(isinstance(history, dict),
           f"{what} should return a history dict {{'epoch': [...], 'train_loss': [...]}}, but it returned "
           f"{kind(history)}.")
    losses = history.get("train_loss")
    expect(isinstance(losses, (list, tuple)),
           f"The history of {what} should have a key 'train_loss' holding a list of numbers (it has keys "
           f"{sorted(str(k) for k in history)}).")
    values = []
    for value in losses:
        expect(not isinstance(value, torch.Tensor),
               f"The history of {what} should hold Python floats in 'train_loss', but it holds tensors: turn "
               f"each loss into a number with .item(), so that the history holds numbers, not tensors.")
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"The history of {what} should hold one number per epoch in 'train_loss', but it holds "
               f"{kind(value)}.")
        values.append(float(value))
    return values


def expect_epochs(history, num_epochs, what):
    """history['epoch'] is [1, ..., num_epochs] (history is a dict, checked by history_losses)."""
    epochs = history.get("epoch")
    want = list(range(1, num_epochs + 1))
    shown = epochs if isinstance(epochs, (list, tuple)) else kind(epochs)
    expect(isinstance(epochs, (list, tuple)) and len(epochs) == num_epochs
           and all(isinstance(e, (int, float)) and not isinstance(e, bool) and e == k for e, k in zip(epochs, want)),
           f"The history of {what} should have a key 'epoch' holding {want} for {num_epochs} epochs (counted "
           f"from 1), but it holds {shown}.")


def expect_trained_in_place(out, w0, b0, probe_grads, what):
    """w (d, 1) and b (1,) as the caller holds them after ``what``: changed, and still leaves that require grad
    (a backward with the judge's ``probe_grads`` after training filled their .grad); returns them."""
    w = expect_tensor(out["w"], f"w after {what}", shape=tuple(w0.shape))
    b = expect_tensor(out["b"], f"b after {what}", shape=tuple(b0.shape))
    expect(not (torch.equal(w, w0) and torch.equal(b, b0)),
           f"{what} did not change the w and b it was given: the training loop must update those very tensors "
           f"(through updater), not new ones.")
    reached = all(g is not None and g.shape == want.shape and torch.allclose(g.double(), want.double())
                  for g, want in zip(out["grads"], probe_grads))
    expect(reached, f"After {what}, w and b should still be leaf tensors that require grad: a loss's backward() "
                    f"no longer fills their .grad.")
    return w, b


def linear_start(created, d, what):
    """(weight (1, d), bias (1,)) that the student's torch.optim.SGD started from, or fail."""
    expect(len(created) >= 1, f"{what} should train with torch.optim.SGD(net.parameters(), lr=lr); no "
                              f"torch.optim.SGD was created.")
    start = created[-1]["start"]
    weights = [t for t in start if tuple(t.shape) in ((1, d), (d, 1), (d,))]
    biases = [t for t in start if tuple(t.shape) in ((1,), ())]
    expect(len(start) == 2 and len(weights) == 1 and len(biases) == 1,
           f"{what} should optimise the weight and the bias of one nn.Linear({d}, 1) (2 tensors); the optimizer "
           f"was given {len(start)} tensors of shapes {[tuple(t.shape) for t in start]}.")
    return weights[0].reshape(1, d), biases[0].reshape(1)


def expect_history_matches(history, expected, num_epochs, what, rule, rtol):
    """history['train_loss'] holds the ``expected`` loss of each epoch (relative tolerance ``rtol``)."""
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs,
           f"{what} should return a history dict whose 'train_loss' holds one number per epoch "
           f"({num_epochs} for {num_epochs} epochs), not {len(losses)}.")
    for epoch, (got, want) in enumerate(zip(losses, expected), start=1):
        expect(math.isfinite(got) and abs(got - want) <= rtol * max(1.0, abs(want)),
               f"In epoch {epoch}, {what} reports train_loss {got:.6g}, but {rule} is {want:.6g} (relative "
               f"tolerance {rtol:g}). With 45 or 65 examples the last minibatch is smaller: weigh each "
               f"batch by its number of examples, and start each epoch's sum afresh.")


def fast_parts(out, what, key):
    """``out[key]`` (the trained net's outputs) and the history from a probe of a loop that returns (net,
    history), or fail when what came back is not a pair."""
    expect("returned" not in out, f"{what} should return two things, a tuple (net, history), but it returned a "
                                  f"{out.get('returned')}.")
    return out[key], out["history"]


def replay_manual(standins, X, y, w0, b0, lr, num_epochs, batch_size, seed, last_divisor, twist):
    """The manual loop of the instructions, run here with ``standins(twist)`` as net, loss and updater, from
    (w0, b0) over ``minibatches(X, y, batch_size, generator)``: (w, b, train_loss per epoch).

    ``last_divisor``: what the step of a smaller last minibatch is divided by (``"batch_size"`` as the
    instructions write it, or ``"size"``, the minibatch's own size, as a mean loss gives it)."""
    from course.datasets import minibatches
    net, loss, updater = standins(twist)
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=gen):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, batch_size if last_divisor == "batch_size" else len(X_batch))
            total += l.sum().item()
            count += l.numel()
        losses.append(total / count)
    return w.detach(), b.detach(), losses


def replay_linear_fast(X, y, weight, bias, loss_fn, lr, num_epochs, batch_size, seed):
    """nn.Linear from (weight, bias), trained here by the instructions' loop: DataLoader(TensorDataset(X, y),
    batch_size, shuffle=True, generator seeded with ``seed``), ``loss_fn`` (mean), SGD(lr), zero_grad before each
    backward, one step per batch. Returns (net, train_loss per epoch, each weighed by its batch's size)."""
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    net = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        net.weight.copy_(weight)
        net.bias.copy_(bias.reshape(-1))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for X_batch, y_batch in loader:
            l = loss_fn(net(X_batch), y_batch)
            optimizer.zero_grad()
            l.backward()
            optimizer.step()
            total += l.item() * len(X_batch)
            count += len(X_batch)
        losses.append(total / count)
    return net, losses


def expect_uses_its_arguments(calls, batches, setting, what, why=""):
    """A manual loop computed every step with the net, loss and updater it was given (``calls``: how often the
    stand-ins were called; the updater's entry a count or a list of its calls) and stepped once per minibatch."""
    counts = {name: len(value) if isinstance(value, list) else value for name, value in calls.items()}
    for name in ("net", "loss", "updater"):
        expect(counts[name] >= batches,
               f"{what} should compute every step with the `{name}` it is given (an argument), but with "
               f"{setting}, it called `{name}` {counts[name]} times. Use the arguments net, loss and updater "
               f"rather than your own functions by name{why}.")
    expect(counts["updater"] == batches,
           f"{what} should call updater exactly once per minibatch ({setting}), but it called it "
           f"{counts['updater']} times.")


def expect_follows_manual(out, standins, X, y, w0, b0, lr, num_epochs, batch_size, seed, twist, what, tols,
                          losses_of):
    """The w and b a manual loop left (``out``) are those of the instructions' loop replayed here from (w0, b0)
    with the same stand-ins (either way of dividing a smaller last minibatch's step), within ``tols[0]``; and
    its history's losses are the replay's, within ``tols[1]`` relative."""
    got = torch.cat([expect_tensor(out["w"], f"w after {what}", shape=(3, 1)).reshape(-1),
                     expect_tensor(out["b"], f"b after {what}", shape=(1,)).reshape(-1)]).double()
    worst, losses = math.inf, None
    for last_divisor in ("batch_size", "size"):
        w, b, replayed = replay_manual(standins, X, y, w0, b0, lr, num_epochs, batch_size, seed, last_divisor, twist)
        want = torch.cat([w.reshape(-1), b.reshape(-1)]).double()
        error = (got - want).abs().max().item() if torch.isfinite(got).all() else math.inf
        if losses is None or error < worst:
            worst, losses = error, replayed
    expect(worst <= tols[0],
           f"After {num_epochs} epochs on {len(X)} examples (lr {lr}, minibatches of {batch_size}), w and "
           f"b differ by up to {worst:.3g} from what the loop described in the instructions gives from the same "
           f"start (tolerance {tols[0]:g}). Check that you iterate over "
           f"minibatches(X, y, batch_size, generator=generator) (the generator fixes their order), call "
           f"backward() on the sum of {losses_of}, and step once per minibatch.")
    expect_history_matches(out["history"], losses, num_epochs, what,
                           "the mean per-example loss over that epoch's minibatches", tols[1])


def expect_plain_sgd(created, d, lr, what):
    """(weight (1, d), bias (1,)) that the student's torch.optim.SGD started from; fail unless it was created as
    SGD(net.parameters(), lr=lr) with no momentum and no weight decay."""
    weight, bias = linear_start(created, d, what)
    opts = created[-1]
    expect(opts["lr"] == lr and opts["momentum"] == 0 and opts["weight_decay"] == 0,
           f"{what} should use torch.optim.SGD(net.parameters(), lr=lr) with the lr it is given "
           f"({lr}) and nothing else; it used lr={opts['lr']:g}, momentum={opts['momentum']:g}, "
           f"weight_decay={opts['weight_decay']:g}.")
    return weight, bias
