"""Checks of task `diagnose_training`."""
import math

import pytest
import torch

from autograder.judge.checks import expect, fail

from .probes import probe_diagnose
from .reference import DIAGNOSES, RUNS_PER_KIND, grading_seed


def expect_diagnoses(runs, labels, kind, hint):
    wrong = [(run, label) for run, label in zip(runs, labels) if label != kind]
    if wrong:
        run, label = wrong[0]

        def show(values):
            shown = ", ".join(f"{v:.3g}" for v in values[:6].tolist())
            return f"[{shown}, ...]" if len(values) > 6 else f"[{shown}]"

        fail(f"diagnose_training labelled {len(wrong)} of {len(runs)} runs of kind {kind!r} wrongly; for example "
             f"a run of {len(run['train_loss'])} epochs with train_loss {show(run['train_loss'])} (last "
             f"{run['train_loss'][-1].item():.3g}) and grad_norm {show(run['grad_norm'])} (last "
             f"{run['grad_norm'][-1].item():.3g}) got {label!r}. {hint}")


def make_runs(kind, seed):
    """RUNS_PER_KIND training runs of one kind: [{"train_loss": (T,) float64, "grad_norm": (T,) float64}]."""
    gen = torch.Generator().manual_seed(7000 + 100 * DIAGNOSES.index(kind) + seed)

    def uniform(low, high):
        return low + (high - low) * torch.rand((), generator=gen, dtype=torch.float64).item()

    def noise(T, scale):
        return 1 + scale * torch.randn(T, generator=gen, dtype=torch.float64).clamp(-3, 3)

    runs = []
    for i in range(RUNS_PER_KIND):
        T = int(torch.randint(8, 31, (), generator=gen))
        t = torch.arange(T, dtype=torch.float64)
        L0, G0 = uniform(0.5, 1.5), uniform(0.3, 3.0)
        if kind == "healthy":
            floor = L0 * uniform(0.05, 0.4)
            loss = (floor + (L0 - floor) * torch.exp(-t / uniform(0.8, 2.5))) * noise(T, 0.02)
            grad = G0 * torch.exp(-t / uniform(1.0, 3.0)) * noise(T, 0.1)
        elif kind == "lr_too_low":
            loss = L0 * (1 - uniform(0.02, 0.06) * t / (T - 1)) * noise(T, 0.002)
            grad = G0 * (1 - uniform(0.0, 0.08) * t / (T - 1)) * noise(T, 0.01)
        elif kind == "no_zero_grad":
            low = uniform(0.3, 0.6)
            loss = L0 * (low + (0.85 - low) * 0.5 * (1 + torch.sin(t * uniform(0.5, 1.5))))
            loss[0] = L0
            grad = G0 * (1 + uniform(0.9, 1.1) * t) * noise(T, 0.05)
        elif i % 2 == 0:   # lr too high: the loss jumps around and climbs
            loss = L0 * (1 + uniform(0.1, 0.4) * t) * (1 + 0.3 * (noise(T, 1.0) - 1).abs())
            loss[0] = L0
            grad = G0 * (1 + uniform(0.3, 1.0) * t) * (1 + 0.3 * (noise(T, 1.0) - 1).abs())
            grad[0] = G0
        else:              # lr too high: blows up to inf, then NaN
            factor = uniform(2.0, 10.0)
            loss = L0 * factor ** t
            grad = G0 * factor ** t
            blow = int(torch.randint(3, T - 1, (), generator=gen))
            loss[blow], grad[blow] = math.inf, math.inf
            loss[blow + 1:], grad[blow + 1:] = math.nan, math.nan
        runs.append({"train_loss": loss, "grad_norm": grad})
    return runs


def make_order_runs(seed):
    """RUNS_PER_KIND runs where the order of the rules decides: gradients never zeroed with a small learning
    rate. The loss falls steadily but by only 2-6% in all (the 'lr_too_low' rule holds too), the gradient norm
    grows about linearly to 8-30x its start: checked in the stated order, 'no_zero_grad'."""
    gen = torch.Generator().manual_seed(7900 + seed)

    def uniform(low, high):
        return low + (high - low) * torch.rand((), generator=gen, dtype=torch.float64).item()

    runs = []
    for _ in range(RUNS_PER_KIND):
        T = int(torch.randint(8, 31, (), generator=gen))
        t = torch.arange(T, dtype=torch.float64)
        L0, G0 = uniform(0.5, 1.5), uniform(0.3, 3.0)
        loss = L0 * (1 - uniform(0.02, 0.06) * t / (T - 1)) * (1 + 0.002 * torch.randn(T, generator=gen,
                                                                                       dtype=torch.float64).clamp(-3, 3))
        grad = G0 * (1 + uniform(0.9, 1.1) * t) * (1 + 0.05 * torch.randn(T, generator=gen,
                                                                         dtype=torch.float64).clamp(-3, 3))
        runs.append({"train_loss": loss, "grad_norm": grad})
    return runs


@pytest.mark.diagnose_training
def test_diagnose_returns_a_label(student):
    runs = [run for kind in DIAGNOSES for run in make_runs(kind, grading_seed())[:1]]
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    for label in labels:
        expect(isinstance(label, str) and label in DIAGNOSES, f"diagnose_training should return one of the strings "
                                   f"{', '.join(repr(d) for d in DIAGNOSES)}, but it returned {label!r}.")


@pytest.mark.diagnose_training
@pytest.mark.parametrize("kind", DIAGNOSES)
def test_diagnose_kind(student, kind):
    runs = make_runs(kind, grading_seed())
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    expect_diagnoses(runs, labels, kind, "Check the order of your rules and that inf and NaN are caught (every "
                                          "comparison with NaN is False).")


@pytest.mark.diagnose_training
def test_diagnose_rules_in_order(student):
    runs = make_order_runs(grading_seed())
    labels = student.probe(probe_diagnose, runs, label="`diagnose_training`")
    expect_diagnoses(runs, labels, "no_zero_grad",
                      "The loss of these runs fell by less than 10%, but their gradient norm grew to more than twice "
                      "its start: the rules apply in the order of the table, so the growing gradient norm "
                      "('no_zero_grad') is checked before the small fall of the loss ('lr_too_low').")
