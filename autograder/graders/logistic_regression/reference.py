"""The judge's side of logistic_regression: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import inspect
import math
import os

import torch

from autograder.judge.checks import expect, expect_tensor, fail
from autograder.judge.training import expect_epochs, history_losses

from .probes import standins


CENTERS = torch.tensor([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]])

N_PER_CLASS = 500

MANUAL_LR, MANUAL_BATCH, MANUAL_EPOCHS = 0.1, 10, 3

FAST_LR, FAST_BATCH, FAST_EPOCHS = 0.1, 10, 3

MIN_ACCURACY, MAX_TEST_LOSS, MAX_TRAIN_LOSS = 0.86, 0.3, 0.3

# Method checks: small data whose last minibatch is smaller, replayed in the judging process.
TRACE_N, TRACE_LR, TRACE_BATCH, TRACE_EPOCHS = 65, 0.5, 10, 2

FAST_TRACE_N, FAST_TRACE_LR, FAST_TRACE_BATCH = 45, 0.5, 20

TOL_TRACE_PARAMS, TOL_TRACE_LOSS = 1e-4, 1e-5

DIAGNOSES = ("healthy", "lr_too_high", "lr_too_low", "no_zero_grad")

RUNS_PER_KIND = 6


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def make_data(seed):
    """Blobs: X (1000, 3) float32, y (1000,) int64 for training; X_test, y_test the same for judging."""
    gen = torch.Generator().manual_seed(2000 + seed)

    def blobs():
        y = torch.arange(2).repeat_interleave(N_PER_CLASS)
        X = CENTERS[y] + torch.randn(len(y), 3, generator=gen)
        return X, y

    X, y = blobs()
    X_test, y_test = blobs()
    return X, y, X_test, y_test


def judge_logits(logits, y_test):
    """Held-out accuracy (logit >= 0, i.e. probability >= 0.5, is class 1) and mean binary cross-entropy, in float64."""
    z = logits.double().reshape(-1)
    t = y_test.double()
    accuracy = ((z >= 0).double() == t).double().mean().item()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t).item()
    return accuracy, loss


def make_trace_data(seed, n):
    """Small overlapping blobs for the method checks: X (n, 3) float32, y (n,) int64."""
    gen = torch.Generator().manual_seed(6000 + seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    X = 0.5 * CENTERS[y] + torch.randn(n, 3, generator=gen)
    return X, y

# The stand-ins' twist (see ``standins``) for the manual loop.
TWIST = {"scale": torch.tensor([[1.2], [0.9], [1.1]]), "shift": 0.3, "weights": [0.9, 1.2], "factors": [1.2, 0.8]}

PIECES = inspect.getsource(standins)

# What the judge asks a loss's backward() to leave in w.grad and b.grad after training (w (3, 1), b (1,)).
PROBE_GRADS = [torch.tensor([[0.5], [-1.25], [2.0]]), torch.tensor([0.75])]


def check_history(history, num_epochs, what):
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect_epochs(history, num_epochs, what)
    expect(all(math.isfinite(v) for v in losses),
           f"The training loss of {what} became inf or NaN: {losses}.")
    expect(losses[-1] <= MAX_TRAIN_LOSS,
           f"After {num_epochs} epochs the training loss reported by {what} is {losses[-1]:.4g}; a correct "
           f"solution reaches below {MAX_TRAIN_LOSS:g} on this data (tolerance included). Is the loss "
           f"computed once, from the logits?")


def check_outcome(logits, y_test, what, settings):
    logits = expect_tensor(logits, f"the logits of the model trained by {what}")
    expect(logits.numel() == len(y_test), f"The model trained by {what} should return one logit per example: "
                                          f"{len(y_test)} for {len(y_test)} inputs, not {logits.numel()}.")
    if not torch.isfinite(logits).all():
        fail(f"The model trained by {what} returns inf or NaN: training diverged.")
    accuracy, loss = judge_logits(logits, y_test)
    expect(accuracy >= MIN_ACCURACY,
           f"After training ({settings}) the model's accuracy on new data is {accuracy:.3f}; a correct "
           f"solution reaches at least {MIN_ACCURACY:g} (tolerance included). The model should output "
           f"logits (no sigmoid inside).")
    expect(loss <= MAX_TEST_LOSS,
           f"After training ({settings}) the binary cross-entropy of the model's logits on new data is "
           f"{loss:.3f}; a correct solution stays below {MAX_TEST_LOSS:g} (tolerance included). Is the "
           f"sigmoid applied exactly once, inside the loss?")


def check_input_unchanged(out, z, what):
    after = out["z_after"]
    expect(after.dtype == z.dtype and tuple(after.shape) == tuple(z.shape) and torch.equal(after, z),
           f"{what} should not change its input z, but after the call z holds other values: compute new "
           f"tensors instead of changing z in place (through .data or under torch.no_grad()).")

EXTREMES = [-1000.0, -100.0, -50.0, -20.0, -5.0, -1.0, -1e-3, 1e-3, 1.0, 5.0, 20.0, 50.0, 100.0, 1000.0]

BCE_CASES = {  # labels: (how they are sent, dtype of z)
    "(n,) int64": (lambda y: y, torch.float64),
    "(n, 1) float64": (lambda y: y.double().reshape(-1, 1), torch.float64),
    "(n,) float64, z float32": (lambda y: y.double(), torch.float32),
}
