"""Checks of task `sgd_step`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close

from .probes import probe_sgd


@pytest.mark.sgd_step
def test_sgd_updates_in_place(student):
    gen = torch.Generator().manual_seed(5)
    shapes = [(3, 1), (1,), (4, 5)]
    values = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(2)]
    lr, batch_size = 0.1, 5
    out = student.probe(probe_sgd, values, grads, lr, batch_size, label="`sgd`")
    steps = out["steps"]
    expected = [v.double() for v in values]
    for k, step in enumerate(steps, start=1):
        when = "after one step" if k == 1 else "after a second step"
        expected = [e - lr * g.double() / batch_size for e, g in zip(expected, grads[k - 1])]
        for i, value in enumerate(step["values"]):
            expect_close(value, expected[i], f"parameter {i} of shape {tuple(expected[i].shape)} {when} "
                         f"(should be p - lr * p.grad / batch_size, changed in place: rebinding a name, "
                         f"p = p - ..., changes nothing for the caller)", rtol=1e-5, atol=1e-6)
        expect(all(g is None or not g.any() for g in step["grads"]),
               f"The gradients should be zero (or None) {when}: backward() adds to .grad, so gradients that are "
               f"not cleared pile up from step to step.")
    expect(len(steps) == len(grads),
           f"After {len(steps)} step(s) of sgd, a loss's backward() through the parameters fails "
           f"({out.get('backward_error', '')[:120]}): the parameters should stay leaf tensors that require grad. "
           f"Update them in place under torch.no_grad() (or through .data), and leave requires_grad as it is.")
