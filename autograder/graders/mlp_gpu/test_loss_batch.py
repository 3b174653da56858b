"""Checks of task `loss_batch`."""
import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close

from .probes import probe_loss_batch
from .reference import (ACCURACY_LABELS, ACCURACY_SCORES, LOSS_BATCH_LR, _describe, linear_start, _margin_loss,
                        _seed, _true_class_prob, number)


@pytest.fixture(scope="module")
def loss_batch_case():
    """The judge's parameters and batch, and its replay: the loss and metric before each of two SGD steps."""
    gen = torch.Generator().manual_seed(_seed(2))
    start = linear_start(gen)
    X, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2])
    W, b = (start[k].clone().requires_grad_(True) for k in ("weight", "bias"))
    optimizer = torch.optim.SGD([W, b], lr=LOSS_BATCH_LR)
    losses, metrics = [], []
    for _ in range(2):
        y_hat = F.linear(X, W, b)
        loss = _margin_loss(y_hat, y)
        losses.append(loss.item())
        metrics.append(_true_class_prob(y_hat.detach(), y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"start": start, "X": X, "y": y, "losses": losses, "metrics": metrics,
            "after_steps": {"weight": W.detach(), "bias": b.detach()}}


def _triple(returned, call):
    """The (loss, n, value) descriptions of what loss_batch returned, or a failure saying what it returned."""
    items = returned["items"]
    expect(items is not None and len(items) == 3,
           f"{call} should return a tuple (loss, n, metric value); it returned a {returned['type']}"
           f"{' of length ' + str(len(items)) if items is not None else ''}.")
    return [_describe(item) for item in items]


@pytest.fixture(scope="module")
def loss_batch_out(student, loss_batch_case):
    case = loss_batch_case
    return student.probe(probe_loss_batch, case["start"], case["X"], case["y"], ACCURACY_SCORES, ACCURACY_LABELS,
                         LOSS_BATCH_LR, label="`accuracy` / `loss_batch`")


@pytest.mark.loss_batch
def test_accuracy_values(loss_batch_out):
    out = loss_batch_out
    for key, want, what in (("acc_logits", 0.625, "logits with 5 of 8 rows correct"),
                            ("acc_logprobs", 0.625, "log-probabilities with 5 of 8 rows correct"),
                            ("acc_probs", 0.8, "probabilities with 4 of 5 rows correct"),
                            ("acc_single", 0.0, "a single row that is wrong")):
        value = _describe(out[key])
        expect(value["kind"] != "float" and value["kind"] != "int",
               f"accuracy(y_hat, y) returned a Python number for {what}: return the 0-dim tensor itself (drop "
               ".item()), so that evaluate adds it up on the model's device and reads the sum once.")
        expect(value["kind"] == "tensor",
               f"accuracy(y_hat, y) should return a 0-dim float tensor (the fraction of correct rows); for {what} "
               f"it returned {'an integer tensor' if value['kind'] == 'tensor-int' else 'a ' + value['type']}.")
        expect_close(value["value"], want, f"accuracy(y_hat, y) for {what}", rtol=0, atol=1e-6)


@pytest.mark.loss_batch
def test_loss_batch_without_optimizer(loss_batch_out, loss_batch_case):
    out, case = loss_batch_out, loss_batch_case
    loss, n, value = _triple(out["plain"], "loss_batch")
    expect(loss["kind"] not in ("float", "int"),
           "loss_batch should return the loss as a detached 0-dim tensor (loss.detach()), not a Python number: "
           "loss.item() makes the CPU wait for the GPU at every batch, while evaluate and fit can add the "
           "tensors up on the device and read the sum once.")
    expect(loss["kind"] == "tensor", f"loss_batch should return the loss as a detached 0-dim tensor "
           f"(loss.detach()); it returned {'an integer tensor' if loss['kind'] == 'tensor-int' else 'a ' + loss['type']}.")
    expect(out["plain"]["graphs"][0] is None,
           "loss_batch returned the loss with its computation graph (requires_grad=True): return loss.detach(), "
           "or the graph of every batch stays alive for as long as the loss is stored.")
    expect(n["kind"] in ("int", "tensor-int") and n["value"] == 6,
           f"loss_batch should return n = 6 (the batch size) for a batch of 6 examples; it returned "
           f"{number(n, 'a value')}.")
    expect_close(loss["value"], case["losses"][0], "the loss returned by loss_batch, computed with the loss_fn it "
                 "is given (here not cross-entropy)", rtol=1e-5, atol=1e-6)
    expect(value["kind"] == "none", "Without a metric, loss_batch should return None as its third value.")
    for key, got in out["after_plain"].items():
        expect(key in case["start"] and torch.equal(got, case["start"][key]),
               "loss_batch without an optimizer must not change the model's parameters (after two calls they "
               "differ from before; compared exactly): step only when an optimizer is given.")
    metric = _triple(out["with_metric"], "loss_batch with a metric")[2]
    expect(metric["value"] is not None, "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
    expect_close(metric["value"], case["metrics"][0], "the metric value returned by loss_batch, computed with "
                 "the metric it is given (here not accuracy)", rtol=1e-5, atol=1e-6)


@pytest.mark.loss_batch
def test_loss_batch_with_optimizer(loss_batch_out, loss_batch_case):
    out, case = loss_batch_out, loss_batch_case
    for i, (returned, loss, value) in enumerate(zip(out["steps"], case["losses"], case["metrics"]), 1):
        got_loss, _, got_value = _triple(returned, "loss_batch with an optimizer")
        expect(got_loss["value"] is not None, "loss_batch should return the loss as a number.")
        expect_close(got_loss["value"], loss, f"the loss returned by call {i} of loss_batch with an optimizer "
                     "(the loss before that step)", rtol=1e-5, atol=1e-6)
        expect(got_value["value"] is not None,
               "With a metric, loss_batch should return metric(y_hat, y) as its third value.")
        expect_close(got_value["value"], value, f"the metric value returned by call {i} (computed on the "
                     "predictions before the step)", rtol=1e-5, atol=1e-6)
    for key, want in case["after_steps"].items():
        expect_close(out["after_steps"].get(key), want, "the parameters after two calls of loss_batch with the SGD "
                     "optimizer it is given (one step each: zero_grad, backward, step)", rtol=1e-5, atol=1e-6)
