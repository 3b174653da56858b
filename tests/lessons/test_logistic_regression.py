"""04-logistic-regression: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest
import torch

from course.logistic_regression import (bce_with_logits, binary_accuracy, diagnose_training, grad_norm, sigmoid,
                                        train_logreg, train_logreg_fast)
from tests.banks import (expect_full_marks, expect_lost_exactly, expect_never_loses_under_seeds, one_per_task,
                         with_edits, with_solutions)
from tests.notebooks import grade

A = "04-logistic-regression"


SIGMOID_BODY = ("    positive = z >= 0\n"
                "    e = torch.exp(torch.where(positive, -z, z))  # exp(-|z|) is in (0, 1]: it never overflows\n"
                "    return torch.where(positive, 1 / (1 + e), e / (1 + e))")
BCE_BODY = ("    y = y.reshape(z.shape).to(z.dtype)\n"
            "    positive = z >= 0\n"
            "    relu = torch.where(positive, z, torch.zeros_like(z))   # max(z, 0)\n"
            "    minus_abs = torch.where(positive, -z, z)               # -|z|\n"
            "    return relu - z * y + torch.log1p(torch.exp(minus_abs))")

def test_reference_never_loses_a_point_under_other_seeds(reference, monkeypatch):
    expect_never_loses_under_seeds(reference, A, (1, 2, 3), monkeypatch)


# name: (task, old text in the reference solution, wrong text); each loses exactly its task (graded in
# groups of one mistake per task).
MISTAKES = {
    "sigmoid_naive_overflow": ("sigmoid", SIGMOID_BODY, "    return 1 / (1 + torch.exp(-z))"),
    "sigmoid_where_with_unsafe_branches": ("sigmoid", SIGMOID_BODY,
                                           "    return torch.where(z >= 0, 1 / (1 + torch.exp(-z)), "
                                           "torch.exp(z) / (1 + torch.exp(z)))"),
    "bce_log_of_sigmoid": ("bce_with_logits", BCE_BODY,
                           "    y = y.reshape(z.shape).to(z.dtype)\n    p = 1 / (1 + torch.exp(-z))\n"
                           "    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))"),
    "bce_labels_broadcast": ("bce_with_logits", "y = y.reshape(z.shape).to(z.dtype)", "y = y.to(z.dtype)"),
    "accuracy_threshold_on_the_wrong_scale": ("binary_accuracy", "(y_hat.reshape(-1) >= 0.5)", "(y_hat.reshape(-1) > 0)"),
    "accuracy_labels_broadcast": ("binary_accuracy",
                                  "predicted = (y_hat.reshape(-1) >= 0.5).long()\n"
                                  "    return (predicted == y.reshape(-1).long()).float().mean().item()",
                                  "predicted = (y_hat >= 0.5).long()\n"
                                  "    return (predicted == y.long()).float().mean().item()"),
    "train_double_sigmoid": ("train_logreg", "l = loss(net(X_batch, w, b), y_batch)",
                             "l = loss(sigmoid(net(X_batch, w, b)), y_batch)"),
    # The consequences the judge sees of state only the student's process holds (an argument left alone, a
    # gradient that reaches the input, the caller's w and b trained, what was returned).
    "sigmoid_clamps_its_input_in_place": ("sigmoid", SIGMOID_BODY,
                                          "    z.data.clamp_(-30, 30)  # no overflow\n"
                                          "    return 1 / (1 + torch.exp(-z))"),
    "sigmoid_detached": ("sigmoid", SIGMOID_BODY, "    return torch.sigmoid(z.detach())"),
    "bce_detached": ("bce_with_logits", "    return relu - z * y + torch.log1p(torch.exp(minus_abs))",
                     "    return (relu - z * y + torch.log1p(torch.exp(minus_abs))).detach()"),
    "train_trains_copies": ("train_logreg", '    history = {"epoch": [], "train_loss": []}',
                            "    w, b = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()\n"
                            '    history = {"epoch": [], "train_loss": []}'),
    "fast_returns_only_the_net": ("train_logreg_fast", "    return net, history", "    return net"),
    "fast_bceloss_on_logits": ("train_logreg_fast", "nn.BCEWithLogitsLoss()", "nn.BCELoss()"),
    "fast_double_sigmoid": ("train_logreg_fast", "net = nn.Linear(X.shape[1], 1)",
                            "net = nn.Sequential(nn.Linear(X.shape[1], 1), nn.Sigmoid())"),
    "fast_labels_not_reshaped": ("train_logreg_fast", "targets = y.float().reshape(-1, 1)", "targets = y.float()"),
}


@pytest.mark.parametrize("group", one_per_task(MISTAKES), ids="+".join)
def test_mistake_loses_exactly_its_task(reference, group):
    report = grade(with_edits(reference, {MISTAKES[name][0]: MISTAKES[name][1:] for name in group}))
    assert report.failed_tasks() == {MISTAKES[name][0] for name in group}, {t.id: t.output for t in report.tasks}
    assert all(report.by_task[MISTAKES[name][0]].output.strip() for name in group)


VARIANTS = {
    "sigmoid": '''
def sigmoid(z):
    """exp(-|z|) through abs; its gradient at exactly 0 is a subgradient, everywhere else exact."""
    e = torch.exp(-torch.abs(z))
    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
''',
    "bce_with_logits": '''
def bce_with_logits(z, y):
    """The textbook stable form with clamp and abs."""
    y = y.view(-1, 1).type_as(z)
    return torch.clamp(z, min=0) - z * y + torch.log(1 + torch.exp(-z.abs()))
''',
    "binary_accuracy": '''
import numpy as np


def binary_accuracy(y_hat, y):
    """Counted with NumPy; np.mean of booleans is a NumPy float64, which is a Python float."""
    predicted = y_hat.detach().numpy().reshape(-1) >= 0.5
    return np.mean(predicted == y.numpy().reshape(-1).astype(bool))
''',
    "train_logreg": '''
def train_logreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=bce_with_logits, updater=sgd,
                 generator=None):
    """Mean loss per batch and an updater step that does not divide again."""
    history = {"epoch": list(range(1, num_epochs + 1)), "train_loss": []}
    for _ in range(num_epochs):
        total = 0.0
        for features, labels in minibatches(X, y, batch_size, generator=generator):
            mean_loss = loss(net(features, w, b), labels).mean()
            mean_loss.backward()
            updater((w, b), lr, 1)
            total += mean_loss.item() * len(labels)
        history["train_loss"].append(total / len(y))
    return history
''',
    "train_logreg_fast": '''
import torch.nn.functional as F

def train_logreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """Own loop, functional loss, zero initialisation."""
    net = nn.Sequential(nn.Linear(X.shape[1], 1))
    nn.init.zeros_(net[0].weight)
    nn.init.zeros_(net[0].bias)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(X, y.unsqueeze(1).to(torch.float32)), batch_size=batch_size,
                        shuffle=True, generator=generator)
    losses = []
    for _ in range(num_epochs):
        total = 0.0
        for features, targets in loader:
            optimizer.zero_grad()
            batch_loss = F.binary_cross_entropy_with_logits(net(features), targets)
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(features)
        losses.append(total / len(X))
    return net, {"epoch": list(range(1, num_epochs + 1)), "train_loss": losses}
''',
    "diagnose_training": '''
import numpy as np


def diagnose_training(history):
    """NumPy, and the mean of the first and last three epochs instead of single values."""
    loss = np.asarray(history["train_loss"], dtype=float)
    norm = np.asarray(history["grad_norm"], dtype=float)
    if not (np.isfinite(loss).all() and np.isfinite(norm).all()):
        return "lr_too_high"
    start, end = loss[:3].mean(), loss[-3:].mean()
    if end > start:
        return "lr_too_high"
    if norm[-3:].mean() > 2 * norm[:3].mean():
        return "no_zero_grad"
    if (start - end) / start < 0.1:
        return "lr_too_low"
    return "healthy"
''',
}


DIAGNOSE_BODY = ('''    losses, norms = list(history["train_loss"]), list(history["grad_norm"])
    if not all(math.isfinite(v) for v in losses + norms) or losses[-1] > losses[0]:
        return "lr_too_high"
    if norms[-1] > 2 * norms[0]:
        return "no_zero_grad"''')

# Mistakes of different tasks graded together (each task is judged on its own): name -> {task: (old, new)}.
# Every notebook must lose exactly the tasks it changes.
GROUPED_MISTAKES = {
    "thresholds_names_and_nan": {
        "binary_accuracy": ("(y_hat.reshape(-1) >= 0.5)", "(y_hat.reshape(-1) > 0.5)"),
        "bce_with_logits": ("    return relu - z * y + torch.log1p(torch.exp(minus_abs))",
                            "    return torch.log1p(torch.exp(z)) - z * y"),
        "train_logreg": ("            l = loss(net(X_batch, w, b), y_batch)\n"
                         "            l.sum().backward()\n"
                         "            updater([w, b], lr, batch_size)",
                         "            l = bce_with_logits(linreg(X_batch, w, b), y_batch)\n"
                         "            l.sum().backward()\n"
                         "            sgd([w, b], lr, batch_size)"),
        "train_logreg_fast": ("shuffle=True, generator=generator)", "shuffle=True)"),
        "diagnose_training": ("    if not all(math.isfinite(v) for v in losses + norms) or losses[-1] > losses[0]:",
                              "    if losses[-1] > losses[0]:"),
    },
    "types_averages_and_order": {
        "sigmoid": ("    positive = z >= 0\n    e = torch.exp(", "    z = z.double()  # more precision\n"
                                                           "    positive = z >= 0\n    e = torch.exp("),
        "binary_accuracy": ("return (predicted == y.reshape(-1).long()).float().mean().item()",
                            "return (predicted == y.reshape(-1).long()).float().mean()"),
        "bce_with_logits": ("y = y.reshape(z.shape).to(z.dtype)", "y = y.reshape(z.shape).double()"),
        "train_logreg": ("            total += l.sum().item()\n            count += l.numel()",
                         "            total += l.mean().item()\n            count += 1"),
        "train_logreg_fast": ("torch.optim.SGD(net.parameters(), lr=lr)", "torch.optim.Adam(net.parameters(), lr=lr)"),
        "diagnose_training": (DIAGNOSE_BODY, '''    losses, norms = list(history["train_loss"]), list(history["grad_norm"])
    if not all(math.isfinite(v) for v in losses + norms):
        return "lr_too_high"
    if norms[-1] > 2 * norms[0]:
        return "no_zero_grad"
    if losses[-1] > losses[0]:
        return "lr_too_high"'''),
    },
}


@pytest.mark.parametrize("name", sorted(GROUPED_MISTAKES))
def test_grouped_mistakes_lose_exactly_their_tasks(reference, name):
    expect_lost_exactly(grade(with_edits(reference, GROUPED_MISTAKES[name])), GROUPED_MISTAKES[name])


def test_correct_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, VARIANTS)))


# Correct in other styles: F.softplus, tqdm bars, prints, nn.Sequential with fit's progress bar, other thresholds.
MORE_VARIANTS = {
    "bce_with_logits": '''
import torch.nn.functional as F


def bce_with_logits(z, y):
    """softplus(z) = log(1 + exp(z)) computed stably by PyTorch."""
    y = y.reshape(z.shape).to(z.dtype)
    return F.softplus(z) - z * y
''',
    "binary_accuracy": '''
def binary_accuracy(y_hat, y):
    """Counts with sum().item(), divided by a Python int."""
    correct = (y_hat.view(-1) >= 0.5) == y.view(-1).bool()
    return correct.sum().item() / len(correct)
''',
    "train_logreg": '''
from tqdm import tqdm


def train_logreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=bce_with_logits, updater=sgd,
                 generator=None):
    """A tqdm bar over the minibatches, each step divided by the size of its own batch, a print per epoch."""
    history = {"epoch": [], "train_loss": []}
    for epoch in range(num_epochs):
        losses = []
        for X_batch, y_batch in tqdm(minibatches(X, y, batch_size, generator=generator), leave=False):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, len(y_batch))
            losses.append(l.detach().reshape(-1))
        epoch_loss = torch.cat(losses).mean().item()
        print(f"epoch {epoch + 1}: loss {epoch_loss:.4f}")
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(epoch_loss)
    return history
''',
    "train_logreg_fast": '''
def train_logreg_fast(X, y, lr, num_epochs, batch_size, generator=None):
    """nn.Sequential, targets made with unsqueeze, fit with its progress bar."""
    net = nn.Sequential(nn.Linear(X.shape[1], 1))
    train_iter = DataLoader(TensorDataset(X, y.unsqueeze(1).float()), batch_size, shuffle=True, generator=generator)
    trainer = torch.optim.SGD(net.parameters(), lr)
    history = fit(net, nn.BCEWithLogitsLoss(), trainer, train_iter, num_epochs)
    return net, history
''',
    "diagnose_training": '''
def diagnose_training(history):
    """Other thresholds: the worst of the last three losses, growth against the smallest gradient norm."""
    losses, norms = history["train_loss"], history["grad_norm"]
    if any(math.isnan(v) or math.isinf(v) for v in losses + norms) or max(losses[-3:]) > losses[0]:
        return "lr_too_high"
    if norms[-1] > 3 * min(norms):
        return "no_zero_grad"
    if (losses[0] - min(losses)) / losses[0] < 0.15:
        return "lr_too_low"
    return "healthy"
''',
}


def test_more_correct_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, MORE_VARIANTS)))


# ------------------------------------------------------------------------------ the library itself
def test_library_is_stable_and_trains():
    z = torch.tensor([-1000.0, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1000.0], requires_grad=True)
    sigmoid(z).sum().backward()
    s = torch.sigmoid(z.detach())
    assert torch.allclose(z.grad, s * (1 - s), atol=1e-7)          # exact, z = 0 included
    z.grad = None
    y = torch.tensor([0, 1, 0, 1, 0, 1, 0])
    loss = bce_with_logits(z.reshape(-1, 1), y)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.detach(), y.float(), reduction="none")
    assert loss.shape == (7, 1) and torch.allclose(loss.reshape(-1), expected)
    loss.sum().backward()
    assert torch.allclose(z.grad, s - y.float(), atol=1e-7)
    assert binary_accuracy(torch.tensor([[0.7], [0.2]]), torch.tensor([1, 1])) == 0.5
    w = torch.zeros(2, 1, requires_grad=True)
    w.grad = torch.tensor([[3.0], [4.0]])
    assert grad_norm([w, torch.zeros(1, requires_grad=True)]) == 5.0
    centers = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(300)
    X = centers[labels] + torch.randn(600, 2, generator=gen)
    w, b = torch.zeros(2, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    history = train_logreg(w, b, X, labels, 0.1, 3, 10, generator=gen)
    assert history["train_loss"][-1] < 0.3
    net, history = train_logreg_fast(X, labels, 0.1, 3, 10, generator=gen)
    assert binary_accuracy(torch.sigmoid(net(X)), labels) > 0.85


def test_library_diagnoses_the_graders_runs():
    from autograder.graders.logistic_regression.reference import DIAGNOSES
    from autograder.graders.logistic_regression.test_diagnose_training import make_runs
    for kind in DIAGNOSES:
        for seed in (0, 1):
            for run in make_runs(kind, seed):
                history = {key: value.tolist() for key, value in run.items()}
                assert diagnose_training(history) == kind, (kind, history)
    assert binary_accuracy(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == 0.5


# ------------------------------------------------------------------ round 3: the edges the instructions state
# Each loses exactly its task only through the check named in the grader's CONTRACT table.
ROUND3_MISTAKES = {
    "dtypes_order_and_history_fields": {
        # Float labels kept in their own dtype: float64 labels turn float32 logits' losses into float64.
        "bce_with_logits": ("y = y.reshape(z.shape).to(z.dtype)", "y = y.reshape(z.shape)"),
        # The slow-loss rule checked before the growing-gradient rule.
        "diagnose_training": ('    if norms[-1] > 2 * norms[0]:\n        return "no_zero_grad"\n'
                              '    if losses[0] - losses[-1] < 0.1 * losses[0]:\n        return "lr_too_low"',
                              '    if losses[0] - losses[-1] < 0.1 * losses[0]:\n        return "lr_too_low"\n'
                              '    if norms[-1] > 2 * norms[0]:\n        return "no_zero_grad"'),
        # The global RNG was seeded to the generator's seed, so the order looked right.
        "train_logreg": ("minibatches(X, y, batch_size, generator=generator)", "minibatches(X, y, batch_size)"),
        # A history without its epochs.
        "train_logreg_fast": ("    return net, history", '    return net, {"train_loss": history["train_loss"]}'),
    },
    "history_of_tensors": {
        # train_loss holds 0-d tensors instead of Python floats.
        "train_logreg": ("total += l.sum().item()", "total += l.sum().detach()"),
    },
}
ROUND3_MESSAGES = {("dtypes_order_and_history_fields", "bce_with_logits"): "torch.float32",
                   ("dtypes_order_and_history_fields", "diagnose_training"): "no_zero_grad",
                   ("dtypes_order_and_history_fields", "train_logreg"): "generator",
                   ("dtypes_order_and_history_fields", "train_logreg_fast"): "'epoch'",
                   ("history_of_tensors", "train_logreg"): ".item()"}


@pytest.mark.parametrize("name", sorted(ROUND3_MISTAKES))
def test_round3_mistakes_lose_exactly_their_tasks(reference, name):
    expect_lost_exactly(grade(with_edits(reference, ROUND3_MISTAKES[name])), ROUND3_MISTAKES[name],
                        {task: ROUND3_MESSAGES[(name, task)] for task in ROUND3_MISTAKES[name]})


# Correct: PyTorch's own loss on labels converted with type_as, a diagnosis written as one expression in the
# stated order, and a loop that seeds nothing and keeps NumPy floats.
ROUND3_VARIANTS = {
    "bce_with_logits": '''
def bce_with_logits(z, y):
    """PyTorch's stable loss, unreduced, labels converted with type_as."""
    return nn.functional.binary_cross_entropy_with_logits(z, y.reshape(z.shape).type_as(z), reduction="none")
''',
    "diagnose_training": '''
def diagnose_training(history):
    """The rules of the table, in their order, as a chain of conditions."""
    loss, norm = history["train_loss"], history["grad_norm"]
    blew_up = any(not math.isfinite(v) for v in loss + norm)
    return ("lr_too_high" if blew_up or loss[-1] > loss[0] else
            "no_zero_grad" if norm[-1] / norm[0] > 2 else
            "lr_too_low" if (loss[0] - loss[-1]) / loss[0] < 0.1 else
            "healthy")
''',
    "train_logreg": '''
import numpy as np


def train_logreg(w, b, X, y, lr, num_epochs, batch_size, net=linreg, loss=bce_with_logits, updater=sgd,
                 generator=None):
    """Per-example losses collected, each epoch's mean a NumPy float64."""
    history = {"epoch": [], "train_loss": []}
    for epoch in range(num_epochs):
        seen = []
        for X_batch, y_batch in minibatches(X, y, batch_size, generator=generator):
            l = loss(net(X_batch, w, b), y_batch)
            l.sum().backward()
            updater([w, b], lr, batch_size)
            seen.append(l.detach().numpy().reshape(-1))
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(np.concatenate(seen).mean(dtype=np.float64))
    return history
''',
}


def test_round3_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, ROUND3_VARIANTS)))
