"""The judge's side of linear_regression: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import inspect
import math
import os

import torch

from autograder.judge.checks import expect
from autograder.judge.training import expect_epochs, history_losses

from .probes import standins


TRUE_W = torch.tensor([1.5, -2.0, 0.7], dtype=torch.float64)

TRUE_B = -1.3

N_TRAIN, N_TEST, NOISE = 1000, 200, 0.01

MANUAL_LR, MANUAL_BATCH, MANUAL_EPOCHS = 0.03, 10, 3

TOL_W, TOL_B, TOL_LOSS = 0.02, 0.02, 1e-3

FAST_LR, FAST_BATCH, FAST_EPOCHS = 0.1, 20, 3

TOL_PRED, TOL_FAST_LOSS = 0.05, 1e-3

# Method checks: small data whose last minibatch is smaller, replayed in the judging process.
TRACE_N, TRACE_LR, TRACE_BATCH, TRACE_EPOCHS = 65, 0.05, 10, 2

FAST_TRACE_N, FAST_TRACE_LR, FAST_TRACE_BATCH = 45, 0.1, 20

TOL_TRACE_PARAMS, TOL_TRACE_LOSS = 1e-4, 1e-5


def grading_seed():
    """Seed of the graders' data (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def make_data(seed):
    """Training data X (n, 3) float32, y (n, 1) float32, and held-out X_test with noise-free targets (float64)."""
    gen = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(N_TRAIN, 3, generator=gen)
    y = (X.double() @ TRUE_W + TRUE_B + NOISE * torch.randn(N_TRAIN, generator=gen, dtype=torch.float64))
    X_test = torch.randn(N_TEST, 3, generator=gen)
    y_test = (X_test.double() @ TRUE_W + TRUE_B).reshape(-1, 1)
    return X, y.float().reshape(-1, 1), X_test, y_test


def make_trace_data(seed, n):
    """Small training data for the method checks: X (n, 3) float32, y (n, 1) float32."""
    gen = torch.Generator().manual_seed(3000 + seed)
    X = torch.randn(n, 3, generator=gen)
    y = (X.double() @ TRUE_W + TRUE_B + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    return X, y.reshape(-1, 1)

# The stand-ins' twist (see ``standins``) for the manual loop.
TWIST = {"scale": torch.tensor([[1.25], [0.9], [1.1]]), "shift": 0.4, "bend": 0.5, "factors": [1.2, 0.8]}

PIECES = inspect.getsource(standins)

# What the judge asks a loss's backward() to leave in w.grad and b.grad after training (w (3, 1), b (1,)).
PROBE_GRADS = [torch.tensor([[0.5], [-1.25], [2.0]]), torch.tensor([0.75])]


def check_history(history, num_epochs, what, threshold):
    losses = history_losses(history, what)
    expect(len(losses) == num_epochs, f"The history of {what} should hold one train_loss per epoch: "
                                      f"{num_epochs} values for {num_epochs} epochs, not {len(losses)}.")
    expect_epochs(history, num_epochs, what)
    expect(all(math.isfinite(v) for v in losses),
           f"The training loss of {what} became inf or NaN: training diverged ({losses}).")
    expect(losses[-1] <= threshold,
           f"After {num_epochs} epochs the training loss of {what} is {losses[-1]:.4g}; a correct loop "
           f"reaches below {threshold:g} on this data (tolerance included). Does every step use the "
           f"gradient of the batch's mean loss exactly once?")
