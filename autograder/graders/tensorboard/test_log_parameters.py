"""Checks of task `log_parameters`."""
import pytest
import torch

from autograder.judge.checks import expect_close, fail

from .probes import probe_log_parameters
from .reference import HIST_ATOL, HIST_RTOL, RunFiles, _seed


def parameter_stages():
    """Parameters and gradients of a Conv2d(1, 2, 2)-Flatten-Linear(8, 2) net at steps 0 (no grads), 1, 2."""
    gen = torch.Generator().manual_seed(_seed(2))
    shapes = {"0.weight": (2, 1, 2, 2), "0.bias": (2,), "2.weight": (2, 8), "2.bias": (2,)}
    stages = []
    for step in range(3):
        params = {name: torch.randn(*shape, generator=gen) for name, shape in shapes.items()}
        grads = None if step == 0 else {name: 0.1 * torch.randn(*shape, generator=gen)
                                         for name, shape in shapes.items()}
        stages.append([params, grads])
    return stages


@pytest.mark.log_parameters
def test_log_parameters_histograms(student):
    stages = parameter_stages()
    out = student.probe(probe_log_parameters, stages, label="`log_parameters`")
    where = "log_parameters on a Conv2d(1, 2, 2)-Flatten-Linear(8, 2) network at steps 0, 1, 2"
    if "none_grad_error" in out:
        fail(f"{where}: at step {out['step']}, before any backward pass, every param.grad is None, and "
             f"add_histogram raised {out['none_grad_error']}. Log a gradient only when param.grad is not None.")
    from course.events import read_histograms

    with RunFiles(out["files"]) as run:
        histograms = read_histograms(run.path())
    by_tag = {}
    for (subdir, tag), points in histograms.items():
        by_tag.setdefault(tag, []).extend(points)
    for name in stages[0][0]:
        for kind, steps in (("weights", [0, 1, 2]), ("grads", [1, 2])):
            tag = f"{kind}/{name}"
            if tag not in by_tag:
                found = ", ".join(sorted(by_tag)) or "none"
                fail(f"{where}: the histogram `{tag}` is missing (histograms found: {found}).")
            got_steps = sorted(step for step, _ in by_tag[tag])
            if got_steps != steps:
                note = " (no gradient histogram while .grad is None)" if kind == "grads" else ""
                fail(f"{where}: `{tag}` has histograms at steps {got_steps}, expected exactly one at each "
                     f"of steps {steps}{note}.")
            for step, stats in sorted(by_tag[tag], key=lambda point: point[0]):
                params, grads = stages[step]
                values = (params if kind == "weights" else grads)[name].to(torch.float64)
                expected = torch.tensor([values.min(), values.max(), values.numel(), values.sum()])
                got = torch.tensor([stats["min"], stats["max"], stats["num"], stats["sum"]],
                                   dtype=torch.float64)
                what = "parameter's values" if kind == "weights" else "parameter's gradient"
                expect_close(got, expected, f"{where}: the histogram `{tag}` at step {step} does not "
                             f"describe the {what} (its min, max, count and sum)",
                             rtol=HIST_RTOL, atol=HIST_ATOL)
