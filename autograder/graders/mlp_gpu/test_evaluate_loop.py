"""Checks of task `evaluate_loop`."""
import pytest
import torch
import torch.nn.functional as F

from autograder.judge.checks import expect, expect_close, fail

from .probes import probe_evaluate
from .reference import EVALUATE_DROPOUT, _describe, linear_start, _margin_loss, _seed, _true_class_prob, number


@pytest.fixture(scope="module")
def evaluate_case():
    """The judge's parameters and batches (10, 10 and 3 examples), and per batch the loss, size and metric that
    the stand-in loss_batch returns (the model in eval mode: its linear layer alone)."""
    gen = torch.Generator().manual_seed(_seed(5))
    start = linear_start(gen)
    X = torch.randn(23, 4, generator=gen)
    X[20:] *= 4                                           # the small last batch differs from the others
    y = torch.randint(0, 3, (23,), generator=gen)
    batches = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    table = []
    for a, b in batches:
        y_hat = F.linear(a, start["weight"], start["bias"])
        table.append({"loss": _margin_loss(y_hat, b).item(), "n": len(a), "metric": _true_class_prob(y_hat, b)})
    expected = {"loss": sum(r["loss"] * r["n"] for r in table) / 23,
                "metric": sum(r["metric"] * r["n"] for r in table) / 23,
                "unweighted_loss": sum(r["loss"] for r in table) / 3,
                "unweighted_metric": sum(r["metric"] for r in table) / 3}
    return {"start": start, "batches": batches, "table": table, "expected": expected}


@pytest.fixture(scope="module")
def evaluate_out(student, evaluate_case):
    case = evaluate_case
    return student.probe(probe_evaluate, case["start"], case["batches"], case["table"], EVALUATE_DROPOUT,
                         label="`evaluate`")


@pytest.mark.evaluate_loop
def test_evaluate_mode_and_no_grad(evaluate_out, evaluate_case):
    seen = evaluate_out["seen"]
    expect(len(seen) >= 6, f"evaluate ran the model on {len(seen)} batches in two calls on data_iter's 3 batches; "
           "it should run it on every batch.")
    W, b = evaluate_case["start"]["weight"].double(), evaluate_case["start"]["bias"].double()
    for X, y_hat in seen:
        want = F.linear(X.double(), W, b)
        expect(tuple(y_hat.shape) == tuple(want.shape) and torch.allclose(y_hat.double(), want, rtol=1e-5, atol=1e-6),
               "evaluate ran the model in training mode: call net.eval() first (dropout and batch norm "
               "behave differently when predicting; the model's outputs differ from its eval-mode outputs by more "
               "than 1e-5).")
    expect(all(grad is None for grad in evaluate_out["grads"]),
           "evaluate ran the model with gradients enabled (a backward through its outputs reaches the weights): "
           "wrap the loop in torch.no_grad().")


@pytest.mark.evaluate_loop
def test_evaluate_weighted_means(evaluate_out, evaluate_case):
    result, expected = evaluate_out["result"], evaluate_case["expected"]
    expect("__type__" not in result and {"loss", "metric", "n"} <= set(result),
           "evaluate should return a dict with the keys 'loss', 'metric' and 'n'"
           f"{'; it returned a ' + result['__type__'] if '__type__' in result else ''}.")
    n = _describe(result["n"])
    expect(n["kind"] in ("int", "tensor-int"),
           f"evaluate's 'n' should be the number of examples, an integer; it is {number(n, 'a value')}.")
    expect(n["value"] == 23, f"evaluate returned n = {n['value']:g} for 23 examples in batches of 10, 10 and 3.")
    loss = _describe(result["loss"])
    expect(loss["kind"] in ("float", "int"),
           f"evaluate's 'loss' should be a Python number, not "
           f"{'a tensor' if loss['kind'].startswith('tensor') else 'a ' + loss['type']}: add up the tensors "
           "loss_batch returns and read the sum once, after the loop (float(total) or total.item()).")
    expect(loss["value"] == loss["value"],
           "evaluate's 'loss' does not come from the loss_fn it is given (here not cross-entropy): pass it on "
           "to loss_batch.")
    if abs(loss["value"] - expected["unweighted_loss"]) < 1e-6:
        fail("evaluate averaged the loss over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(loss["value"], expected["loss"], "the mean loss returned by evaluate (batches of 10, 10 and 3 "
                 "examples, weighted by batch size; computed with the loss_fn it is given)", rtol=1e-5, atol=1e-6)
    metric = _describe(result["metric"])
    expect(metric["kind"] in ("float", "int"),
           f"evaluate's 'metric' should be a Python number when a metric is given, not "
           f"{'a tensor' if metric['kind'].startswith('tensor') else 'None' if metric['kind'] == 'none' else 'a ' + metric['type']}"
           ": read the sum once, after the loop (float(total) or total.item()).")
    expect(metric["value"] == metric["value"],
           "evaluate's 'metric' does not come from the metric it is given (here not accuracy): pass that metric "
           "on to loss_batch.")
    if abs(metric["value"] - expected["unweighted_metric"]) < 1e-6:
        fail("evaluate averaged the metric over batches without weighting each batch by its size: the last batch "
             "of 3 examples counted as much as one of 10.")
    expect_close(metric["value"], expected["metric"], "the mean metric returned by evaluate (weighted by batch size; "
                 "computed with the metric it is given, here not accuracy)", rtol=1e-5, atol=1e-6)
    none = evaluate_out["result_none"]
    expect("__type__" not in none and "metric" in none and none["metric"] is None,
           "Without a metric, evaluate should return None under 'metric'.")
