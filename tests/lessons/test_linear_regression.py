"""03-linear-regression: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest
import torch

from course.linear_regression import init_linreg_params, linreg, sgd, squared_loss, train_linreg, train_linreg_fast
from tests.banks import (expect_full_marks, expect_lost_exactly, expect_never_loses_under_seeds, one_per_task,
                         with_edits, with_solutions)
from tests.notebooks import edit_solution, grade, source_notebook

A = "03-linear-regression"


def test_reference_never_loses_a_point_under_other_seeds(reference, monkeypatch):
    expect_never_loses_under_seeds(reference, A, (1, 2, 3), monkeypatch)


# name: (task, old text in the reference solution, wrong text); each loses exactly its task (graded in
# groups of one mistake per task).
MISTAKES = {
    "init_not_a_leaf": ("init_linreg_params",
                        "w = torch.normal(0.0, sigma, size=(num_inputs, 1), requires_grad=True)",
                        "w = torch.randn(num_inputs, 1, requires_grad=True) * sigma"),
    "linreg_flat_output": ("linreg", "return X @ w + b", "return (X * w.T).sum(dim=1) + b"),
    "loss_broadcasts_flat_targets": ("squared_loss", "return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                                     "return (y_hat - y) ** 2 / 2"),
    "loss_already_averaged": ("squared_loss", "return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                              "return ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).mean()"),
    "sgd_in_place_outside_no_grad": ("sgd_step", "    with torch.no_grad():\n        for param in params:\n"
                                                 "            param -= lr * param.grad / batch_size\n"
                                                 "            param.grad.zero_()",
                                     "    for param in params:\n        param -= lr * param.grad / batch_size\n"
                                     "        param.grad.zero_()"),
    "sgd_rebinds_loop_variable": ("sgd_step", "            param -= lr * param.grad / batch_size\n"
                                              "            param.grad.zero_()",
                                  "            grad = param.grad\n            param = param - lr * grad / batch_size\n"
                                  "            grad.zero_()"),
    "sgd_forgets_to_zero_gradients": ("sgd_step", "            param.grad.zero_()\n", ""),
    # The consequences the judge sees of state only the student's process holds (leaf, requires_grad, the same
    # objects, a zeroed gradient, an argument left alone): gradients after a backward(), values after steps.
    "init_w_without_grad": ("init_linreg_params",
                            "w = torch.normal(0.0, sigma, size=(num_inputs, 1), requires_grad=True)",
                            "w = torch.normal(0.0, sigma, size=(num_inputs, 1))"),
    "init_returns_the_same_tensors_again": ("init_linreg_params", "    return w, b",
                                            "    return init_linreg_params.__dict__.setdefault(num_inputs, (w, b))"),
    "sgd_replaces_list_items": ("sgd_step", "        for param in params:\n"
                                            "            param -= lr * param.grad / batch_size\n",
                                "        for i, param in enumerate(params):\n"
                                "            params[i] = param - lr * param.grad / batch_size\n"),
    "sgd_turns_off_requires_grad": ("sgd_step", "    with torch.no_grad():\n        for param in params:\n"
                                                "            param -= lr * param.grad / batch_size\n"
                                                "            param.grad.zero_()",
                                    "    for param in params:\n        param.requires_grad_(False)\n"
                                    "        param -= lr * param.grad / batch_size\n        param.grad.zero_()"),
    "loss_subtracts_into_a_view_of_y": ("squared_loss", "    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                                        "    diff = y.reshape(y_hat.shape)\n    diff -= y_hat\n    return diff ** 2 / 2"),
    "loss_resizes_y_in_place": ("squared_loss", "    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                                "    y.resize_(y_hat.shape)\n    return (y_hat - y) ** 2 / 2"),
    "train_rebinds_parameters": ("train_linreg", "            updater([w, b], lr, batch_size)",
                                 "            w = w - lr * w.grad / batch_size\n"
                                 "            b = b - lr * b.grad / batch_size"),
    "train_divides_by_batch_size_twice": ("train_linreg", "l.sum().backward()", "l.mean().backward()"),
    "fast_sum_reduction_with_mean_lr": ("train_linreg_fast", "nn.MSELoss()", "nn.MSELoss(reduction='sum')"),
    "fast_forgets_zero_grad": ("train_linreg_fast", "            optimizer.zero_grad()\n", ""),
}


@pytest.mark.parametrize("group", one_per_task(MISTAKES), ids="+".join)
def test_mistake_loses_exactly_its_task(reference, group):
    report = grade(with_edits(reference, {MISTAKES[name][0]: MISTAKES[name][1:] for name in group}))
    assert report.failed_tasks() == {MISTAKES[name][0] for name in group}, {t.id: t.output for t in report.tasks}
    assert all(report.by_task[MISTAKES[name][0]].output.strip() for name in group)


VARIANTS = {
    "init_linreg_params": '''
def init_linreg_params(num_inputs, sigma=0.01):
    """Values first, scaled, then marked as requiring grad."""
    w = (torch.randn(num_inputs, 1) * sigma).requires_grad_()
    b = torch.zeros(1).requires_grad_(True)
    return w, b
''',
    "linreg": '''
def linreg(X, w, b):
    """Matrix product written with torch.matmul."""
    return torch.matmul(X, w) + b
''',
    "squared_loss": '''
def squared_loss(y_hat, y):
    """Half the squared difference, y viewed like y_hat."""
    diff = y_hat - y.view_as(y_hat)
    return 0.5 * diff * diff
''',
    "sgd_step": '''
def sgd(params, lr, batch_size):
    """Old-style update through .data; gradients dropped."""
    for p in params:
        p.data -= lr * p.grad.data / batch_size
        p.grad = None
''',
    "train_linreg": '''
def train_linreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=squared_loss, updater=sgd,
                 generator=None):
    """Mean loss per batch and an updater that does not divide again; the epoch's mean weighs each batch."""
    losses = []
    for _ in range(num_epochs):
        total = 0.0
        for features, targets in minibatches(X, y, batch_size, generator=generator):
            batch_loss = loss(net(features, w, b), targets).mean()
            batch_loss.backward()
            updater([w, b], lr, 1)
            total += batch_loss.item() * len(features)
        losses.append(total / len(X))
    return {"epoch": list(range(1, num_epochs + 1)), "train_loss": losses}
''',
    "train_linreg_fast": '''
from course.trainer import fit

def train_linreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """nn.Sequential with its own initialisation, trained with course.trainer.fit."""
    net = nn.Sequential(nn.Linear(X.shape[1], 1))
    net[0].weight.data.normal_(0, 0.01)
    net[0].bias.data.fill_(0)
    loader = DataLoader(TensorDataset(X, y), batch_size, shuffle=True, generator=generator)
    history = fit(net, nn.MSELoss(), torch.optim.SGD(net.parameters(), lr), loader, num_epochs, progress=False)
    return net, history
''',
}


# Mistakes of different tasks graded together (each task is judged on its own): name -> {task: (old, new)}.
# Every notebook must lose exactly the tasks it changes.
GROUPED_MISTAKES = {
    "contract_slips": {
        "init_linreg_params": ("w = torch.normal(0.0, sigma, size=(num_inputs, 1), requires_grad=True)",
                               "w = torch.normal(0, 0.01, size=(num_inputs, 1), requires_grad=True)"),
        "linreg": ("return X @ w + b", "return (X @ w + b).float()"),
        "squared_loss": ("return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                         "return (y_hat - y.reshape(y_hat.shape)) ** 2"),
        "sgd_step": ("param -= lr * param.grad / batch_size", "param -= lr * param.grad"),
        "train_linreg": ("            l = loss(net(X_batch, w, b), y_batch)\n"
                         "            l.sum().backward()\n"
                         "            updater([w, b], lr, batch_size)",
                         "            l = squared_loss(linreg(X_batch, w, b), y_batch)\n"
                         "            l.sum().backward()\n"
                         "            sgd([w, b], lr, batch_size)"),
        "train_linreg_fast": ("torch.optim.SGD(net.parameters(), lr=lr)",
                              "torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)"),
    },
    "averages_and_copies": {
        "init_linreg_params": ("w = torch.normal(0.0, sigma, size=(num_inputs, 1), requires_grad=True)",
                               "w = (torch.rand(num_inputs, 1) * sigma).requires_grad_()"),
        "squared_loss": ("    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                         "    if y.dim() == 1:\n        y.unsqueeze_(1)\n    return (y_hat - y) ** 2 / 2"),
        "sgd_step": ("    with torch.no_grad():\n        for param in params:\n"
                     "            param -= lr * param.grad / batch_size\n            param.grad.zero_()",
                     "    with torch.no_grad():\n"
                     "        return [param - lr * param.grad / batch_size for param in params]"),
        "train_linreg": ("            total += l.sum().item()\n            count += l.numel()",
                         "            total += l.mean().item()\n            count += 1"),
        "train_linreg_fast": ("            total += l.item() * len(X_batch)\n            count += len(X_batch)",
                              "            total += l.item()\n            count += 1"),
    },
    "order_of_the_minibatches": {
        "train_linreg": ("        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):",
                         "        indices = list(range(len(X)))\n        random.shuffle(indices)\n"
                         "        for start in range(0, len(X), batch_size):\n"
                         "            batch = indices[start:start + batch_size]\n"
                         "            X_batch, y_batch = X[batch], y[batch]"),
        "train_linreg_fast": ("batch_size=batch_size, shuffle=True, generator=generator)",
                              "batch_size=batch_size, shuffle=True)"),
        "sgd_step": ("            param -= lr * param.grad / batch_size\n            param.grad.zero_()",
                     "            param.grad.zero_()\n            param -= lr * param.grad / batch_size"),
    },
}


@pytest.mark.parametrize("name", sorted(GROUPED_MISTAKES))
def test_grouped_mistakes_lose_exactly_their_tasks(reference, name):
    nb = reference
    for task, (old, new) in GROUPED_MISTAKES[name].items():
        if "random.shuffle" in new:
            nb = edit_solution(nb, task, "def train_linreg(", "import random\n\n\ndef train_linreg(")
        nb = edit_solution(nb, task, old, new)
    report = grade(nb)
    assert report.error is None
    assert report.failed_tasks() == set(GROUPED_MISTAKES[name]), {t.id: t.output for t in report.tasks}
    for task in GROUPED_MISTAKES[name]:
        output = report.by_task[task].output
        assert output.strip() and "probe" not in output and "Traceback" not in output, output


def test_correct_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, VARIANTS)))


# Correct in other styles: tqdm bars, prints, NumPy averages, nn.Sequential, the d2l slice update.
MORE_VARIANTS = {
    "init_linreg_params": '''
def init_linreg_params(num_inputs, sigma=0.01):
    """nn.init on a plain tensor, then gradients requested."""
    w = torch.empty(num_inputs, 1)
    nn.init.normal_(w, mean=0.0, std=sigma)
    w.requires_grad_(True)
    return w, torch.zeros(1, requires_grad=True)
''',
    "squared_loss": '''
def squared_loss(y_hat, y):
    """Half of the unreduced MSE."""
    return 0.5 * nn.functional.mse_loss(y_hat, y.view_as(y_hat), reduction="none")
''',
    "sgd_step": '''
def sgd(params, lr, batch_size):
    """d2l's slice assignment under no_grad; gradients set to None."""
    with torch.no_grad():
        for param in params:
            param[:] = param - lr * param.grad / batch_size
            param.grad = None
''',
    "train_linreg": '''
import numpy as np
from tqdm.auto import tqdm


def train_linreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=squared_loss, updater=sgd,
                 generator=None):
    """A tqdm bar, the last batch's own size for the step, a NumPy weighted mean per epoch."""
    history = {"epoch": [], "train_loss": []}
    for epoch in tqdm(range(num_epochs), desc="epochs"):
        batch_means, sizes = [], []
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, X_batch.shape[0])
            batch_means.append(l.mean().item())
            sizes.append(len(X_batch))
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(float(np.average(batch_means, weights=sizes)))
        print(f"epoch {epoch + 1}, loss {history['train_loss'][-1]:f}")
    return history
''',
    "train_linreg_fast": '''
import warnings


def train_linreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """nn.Sequential, an explicit loop that sums the loss times the batch size, and a warning."""
    net = nn.Sequential(nn.Linear(X.shape[1], 1))
    trainer = torch.optim.SGD(net.parameters(), lr)
    loss = nn.MSELoss()
    data_iter = DataLoader(TensorDataset(X, y), batch_size, shuffle=True, generator=generator)
    if len(X) % batch_size:
        warnings.warn("the last minibatch is smaller")
    history = {"epoch": [], "train_loss": []}
    for epoch in range(num_epochs):
        running = 0.0
        for X_batch, y_batch in data_iter:
            trainer.zero_grad()
            l = loss(net(X_batch), y_batch)
            l.backward()
            trainer.step()
            running += l.item() * X_batch.shape[0]
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(running / len(X))
    return net, history
''',
}


def test_more_correct_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, MORE_VARIANTS)))


# ------------------------------------------------------------------------------ the library itself
def test_library_matches_the_lesson():
    w, b = init_linreg_params(3)
    assert w.shape == (3, 1) and b.shape == (1,) and w.is_leaf and b.is_leaf and w.requires_grad
    X = torch.randn(7, 3)
    assert linreg(X, w, b).shape == (7, 1)
    assert squared_loss(torch.zeros(7, 1), torch.ones(7)).shape == (7, 1)
    p = torch.ones(2, requires_grad=True)
    p.grad = torch.tensor([2.0, 4.0])
    sgd([p], 0.5, 2)
    assert torch.allclose(p, torch.tensor([0.5, 0.0])) and p.is_leaf and (p.grad == 0).all()
    true_w = torch.tensor([[2.0], [-3.4]])
    X = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    y = X @ true_w + 4.2
    w, b = init_linreg_params(2)
    history = train_linreg(w, b, X, y, 0.03, 3, 10, generator=torch.Generator().manual_seed(0))
    assert len(history["train_loss"]) == 3 and history["train_loss"][-1] < 1e-3
    assert (w.detach() - true_w).abs().max() < 0.01
    net, history = train_linreg_fast(X, y, 0.03, 3, 10, generator=torch.Generator().manual_seed(0))
    assert (net.weight.detach().T - true_w).abs().max() < 0.01


# ------------------------------------------------------------------ round 3: the edges the instructions state
# Each loses exactly its task only through the check named in the grader's CONTRACT table.
ROUND3_MISTAKES = {
    "edges_and_history_fields": {
        # Right for n > 1; a batch of one row squeezes to a scalar and comes back (1,), not (1, 1).
        "squared_loss": ("return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2",
                         "return ((y_hat.squeeze() - y.squeeze()) ** 2 / 2).unsqueeze(-1)"),
        # history["epoch"] counts from 0.
        "train_linreg": ("    for epoch in range(1, num_epochs + 1):\n        total, count = 0.0, 0\n"
                         "        for X_batch, y_batch in minibatches(",
                         "    for epoch in range(num_epochs):\n        total, count = 0.0, 0\n"
                         "        for X_batch, y_batch in minibatches("),
        # train_loss holds 0-d tensors instead of Python floats.
        "train_linreg_fast": ("total += l.item() * len(X_batch)", "total += l.detach() * len(X_batch)"),
    },
    "generator_ignored": {
        # The global RNG was seeded to the generator's seed, so the order looked right.
        "train_linreg": ("minibatches(X, y, batch_size, generator=generator)", "minibatches(X, y, batch_size)"),
    },
}
ROUND3_MESSAGES = {("edges_and_history_fields", "squared_loss"): "(1, 1)",
                   ("edges_and_history_fields", "train_linreg"): "'epoch'",
                   ("edges_and_history_fields", "train_linreg_fast"): ".item()",
                   ("generator_ignored", "train_linreg"): "generator"}


@pytest.mark.parametrize("name", sorted(ROUND3_MISTAKES))
def test_round3_mistakes_lose_exactly_their_tasks(reference, name):
    expect_lost_exactly(grade(with_edits(reference, ROUND3_MISTAKES[name])), ROUND3_MISTAKES[name],
                        {task: ROUND3_MESSAGES[(name, task)] for task in ROUND3_MISTAKES[name]})


# Correct: the global RNG seeded as well as the generator used, NumPy floats in the history, epochs from
# a list made up front, and a one-row batch handled by reshape.
ROUND3_VARIANTS = {
    "squared_loss": '''
def squared_loss(y_hat, y):
    """Flattened both ways, then put back into y_hat's shape."""
    return ((y_hat.reshape(-1) - y.reshape(-1)) ** 2 / 2).reshape(y_hat.shape)
''',
    "train_linreg": '''
import numpy as np


def train_linreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=squared_loss, updater=sgd,
                 generator=None):
    """Epochs listed up front; each epoch's mean as a NumPy float64 (a Python float subclass)."""
    history = {"epoch": list(range(1, num_epochs + 1)), "train_loss": []}
    for _ in history["epoch"]:
        per_example = []
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, batch_size)
            per_example.extend(l.detach().reshape(-1).tolist())
        history["train_loss"].append(np.mean(per_example))
    return history
''',
    "train_linreg_fast": '''
def train_linreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """Global seed untouched, the loss summed as a tensor and turned into a float once per epoch."""
    net = nn.Linear(X.shape[1], 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True, generator=generator)
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total = torch.zeros(())
        for X_batch, y_batch in loader:
            optimizer.zero_grad()
            l = nn.MSELoss()(net(X_batch), y_batch)
            l.backward()
            optimizer.step()
            total += l.detach() * len(X_batch)
        history["epoch"].append(epoch)
        history["train_loss"].append(float(total) / len(X))
    return net, history
''',
}


def test_round3_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, ROUND3_VARIANTS)))


@pytest.mark.parametrize("kind", ["linear", "sequential", "custom"])
def test_the_locked_fast_demo_works_with_every_accepted_model(kind):
    """The lesson's locked demo cell reads w and b from what any accepted `train_linreg_fast` returns."""
    from autograder.judge.notebook import source_of
    from tests.notebooks import find_cell

    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[2.0], [-3.4]]))
            self.b = torch.nn.Parameter(torch.tensor([4.2]))

        def forward(self, X):
            return X @ self.w + self.b

    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, -3.4]]))
        linear.bias.fill_(4.2)
    net = {"linear": linear, "sequential": torch.nn.Sequential(linear), "custom": Custom()}[kind]
    printed = []
    scope = {"torch": torch, "true_w": torch.tensor([2.0, -3.4]), "true_b": 4.2, "X": None, "y": None,
             "train_linreg_fast": lambda *a, **k: (net, {"epoch": [1], "train_loss": [0.1]}),
             "plot_history": lambda *a, **k: type("Axes", (), {"set_yscale": lambda self, s: None})(),
             "print": lambda *a: printed.append(a)}
    exec(source_of(find_cell(source_notebook(A), "fast_demo")), scope)
    assert [round(abs(v), 5) for v in printed[0][1]] == [0.0, 0.0] and abs(printed[1][1]) < 1e-5
