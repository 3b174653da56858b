"""Checks of task `fit_loop`."""
import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail

from .probes import probe_fit
from .reference import FIT_EPOCHS, FIT_LR, _describe, linear_start, _margin_loss, _seed, _true_class_prob


def fit_model():
    """Linear(4, 3) then BatchNorm1d(3): in train mode batch norm normalises with the batch's statistics and
    updates its running ones, so the state after fit shows in which mode every training batch ran."""
    with torch.random.fork_rng(devices=[]):
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


@pytest.fixture(scope="module")
def fit_case():
    """The judge's parameters and batches, and its replay of fit: the numbers its stand-ins return, the
    history and the state_dict after training."""
    gen = torch.Generator().manual_seed(_seed(3))
    X = torch.randn(23, 4, generator=gen)
    y = torch.randint(0, 3, (23,), generator=gen)
    train_batches = [(X[:5], y[:5]), (X[5:10], y[5:10]), (X[10:13], y[10:13])]
    valid_batches = [(X[13:17], y[13:17]), (X[17:21], y[17:21])]
    net = fit_model()
    start = {**linear_start(gen), "1.weight": 1 + 0.2 * torch.rand(3, generator=gen),
             "1.bias": 0.2 * torch.randn(3, generator=gen)}
    start = {(k if "." in k else f"0.{k}"): v for k, v in start.items()}
    net.load_state_dict({**net.state_dict(), **start})
    start = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=FIT_LR)
    train_table, valid_table = [], []
    expected = {"train_loss": [], "valid_loss": [], "valid_metric": [], "unweighted_train_loss": []}
    for _ in range(FIT_EPOCHS):
        net.train()
        losses = []
        for a, b in train_batches:
            optimizer.zero_grad()
            loss = _margin_loss(net(a), b)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            train_table.append({"loss": loss.item(), "n": len(a)})
        sizes = [len(a) for a, _ in train_batches]
        expected["train_loss"].append(sum(l * n for l, n in zip(losses, sizes)) / sum(sizes))
        expected["unweighted_train_loss"].append(sum(losses) / len(losses))
        net.eval()
        with torch.no_grad():
            outs = [(net(a), b) for a, b in valid_batches]
        total = sum(len(b) for _, b in outs)
        row = {"loss": sum(_margin_loss(o, b).item() * len(b) for o, b in outs) / total,
               "metric": sum(_true_class_prob(o, b) * len(b) for o, b in outs) / total}
        valid_table.append(row)
        expected["valid_loss"].append(row["loss"])
        expected["valid_metric"].append(row["metric"])
    return {"start": start, "train_batches": train_batches, "valid_batches": valid_batches,
            "train_table": train_table, "valid_table": valid_table, "expected": expected,
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def _check_state(state, want, call):
    """The model's parameters and batch-norm statistics after ``call`` against the judge's replay."""
    for key, value in want.items():
        expect_close(state[key].double(), value.double(), f"the parameters after {call} (3 epochs, one step of the "
                     "optimizer it is given per training batch, in train mode)", rtol=1e-4, atol=1e-6)


def _check_history(history, expected, keys, call):
    """The history of one fit call against the judge's replay."""
    expect("__type__" not in history, f"{call} should return the history as a dict, not a "
           f"{history.get('__type__')}.")
    epochs = history.get("epoch")
    expect(epochs is not None and epochs["items"] is not None,
           f"The history returned by {call} should hold the list 'epoch'.")
    kinds = [_describe(i) for i in epochs["items"]]
    for item in kinds if call == "fit" else ():
        expect(item["kind"] in ("int", "float"), f"history['epoch'] returned by {call} should hold Python numbers "
               f"(1, 2, ...), not {'tensors' if item['kind'].startswith('tensor') else 'a ' + item['type']}.")
    values = [item["value"] for item in kinds]
    expect(values == [1.0, 2.0, 3.0], f"history['epoch'] returned by {call} is "
           f"[{', '.join('?' if v is None else f'{v:g}' for v in values)}]; it should be [1, 2, 3] (epochs count "
           "from 1).")
    for key in keys:
        expect(key in history, f"The history returned by {call} has no key '{key}'.")
        entry = history[key]
        expect(entry["items"] is not None and len(entry["items"]) == 3,
               f"history['{key}'] should be a list with one value per epoch (3 epochs).")
        items = [_describe(i) for i in entry["items"]]
        for item in items:
            if item["kind"].startswith("tensor"):
                fail(f"history['{key}'] holds tensors: read each epoch's sum once, as a Python float (float(total) "
                     "or total.item()); a tensor kept in the history may also keep a whole computation graph alive.")
            expect(item["kind"] in ("float", "int"), f"history['{key}'] should hold Python numbers, not "
                   f"{'None' if item['kind'] == 'none' else 'a ' + item['type']}.")
        got = [i["value"] for i in items]
        expect(all(g == g for g in got), f"history['{key}'] returned by {call} does not come from the "
               f"{'metric' if key == 'valid_metric' else 'loss'} fit is given (here not "
               f"{'accuracy' if key == 'valid_metric' else 'cross-entropy'}): pass it on to loss_batch and evaluate.")
        if key == "train_loss" and all(abs(g - u) < 1e-7 for g, u in zip(got, expected["unweighted_train_loss"])):
            fail("history['train_loss'] is the plain mean of the batch losses: weight each batch's loss by its "
                 "size (the last batch of an epoch holds 3 examples, the others 5).")
        expect_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected[key], dtype=torch.float64),
                     f"history['{key}'] returned by {call} (per epoch; the training loss weighted by batch size; "
                     "computed with the loss and metric fit is given)", rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def fit_out(student, fit_case):
    case = fit_case
    return {"runs": student.probe(probe_fit, case["start"], case["train_batches"], case["valid_batches"],
                                  case["train_table"], case["valid_table"], FIT_LR, FIT_EPOCHS, label="`fit`"),
            "expected": case["expected"], "state": case["state"]}


@pytest.mark.fit_loop
def test_fit_trains_in_train_mode(fit_out):
    tracked = int(fit_out["runs"]["main"]["state"]["1.num_batches_tracked"])
    expect(tracked >= 9, f"fit trained the model in eval mode for {9 - tracked} of its 9 training batches (3 "
           "epochs of 3): call net.train() at the start of every epoch (evaluate leaves the model in eval mode, "
           "and the model may start in it).")
    expect(tracked == 9, f"fit ran the model in train mode on {tracked} batches; 3 epochs of 3 training batches "
           "are 9.")


@pytest.mark.fit_loop
def test_fit_history(fit_out):
    _check_history(fit_out["runs"]["main"]["history"], fit_out["expected"],
                   ("train_loss", "valid_loss", "valid_metric"), "fit")


@pytest.mark.fit_loop
def test_fit_parameters(fit_out):
    _check_state(fit_out["runs"]["main"]["state"], fit_out["state"], "fit")


@pytest.mark.fit_loop
def test_fit_without_validation(fit_out):
    runs = fit_out["runs"]
    for name, call, keys in (("no_valid", "fit(..., valid_iter=None)", ("train_loss",)),
                             ("progress", "fit(..., progress=True)", ("train_loss", "valid_loss", "valid_metric"))):
        run = runs[name]
        expect("error" not in run, f"{call} raised {run.get('error')}"
               f"{': evaluate only when valid_iter is given' if name == 'no_valid' else ''}.")
        _check_history(run["history"], fit_out["expected"], keys, call)
        _check_state(run["state"], fit_out["state"], call)
