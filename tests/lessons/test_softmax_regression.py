"""05-softmax-regression: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.banks import expect_lost_exactly, expect_never_loses_under_seeds, one_per_task, with_edits
from tests.notebooks import edit_solution, grade, replace_solution

A = "05-softmax-regression"
ALL_TASKS = {"softmax_stable", "softmax_cross_entropy", "softmax_regression_model", "softmax_train_manual",
             "softmax_train_fast"}


def outputs(report):
    return {t.id: t.output for t in report.tasks}


def test_reference_never_loses_a_point_under_other_seeds(reference, monkeypatch):
    expect_never_loses_under_seeds(reference, A, (1, 2, 3), monkeypatch)


SOFTMAX_BODY = """    shift = O.max(dim=1, keepdim=True).values
    O_exp = torch.exp(O - shift)
    return O_exp / O_exp.sum(dim=1, keepdim=True)"""

CROSS_ENTROPY_BODY = """    shift = O.max(dim=1, keepdim=True).values
    shifted = O - shift
    log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    return -log_probs[torch.arange(O.shape[0]), y].mean()"""

SGD_STEP = "sgd([W, b], lr, 1)"

# name: (task, [(old, new), ...] edits in that task's solution cell). Each mistake loses exactly its task
# (graded in groups of one mistake per task).
MISTAKES = {
    # softmax_stable
    "naive_softmax_overflows": ("softmax_stable", [(SOFTMAX_BODY, """    O_exp = torch.exp(O)
    return O_exp / O_exp.sum(dim=1, keepdim=True)""")]),
    "softmax_over_the_wrong_dim": ("softmax_stable", [(SOFTMAX_BODY, SOFTMAX_BODY.replace("dim=1", "dim=0"))]),
    "in_place_max_shift_mutates_logits": ("softmax_stable", [("O_exp = torch.exp(O - shift)",
                                                              "O -= shift\n    O_exp = torch.exp(O)")]),
    "softmax_result_detached": ("softmax_stable", [("return O_exp / O_exp.sum(dim=1, keepdim=True)",
                                                    "return (O_exp / O_exp.sum(dim=1, keepdim=True)).detach()")]),
    # softmax_cross_entropy
    "log_of_softmax_underflows": ("softmax_cross_entropy", [(CROSS_ENTROPY_BODY,
        "    return -torch.log(softmax(O)[torch.arange(O.shape[0]), y]).mean()")]),
    "nll_loss_on_raw_logits": ("softmax_cross_entropy", [(CROSS_ENTROPY_BODY, "    return F.nll_loss(O, y)")]),
    "cross_entropy_rebuilt_from_its_value": ("softmax_cross_entropy", [(
        "return -log_probs[torch.arange(O.shape[0]), y].mean()",
        "return torch.tensor(-log_probs[torch.arange(O.shape[0]), y].mean().item(), dtype=O.dtype)")]),
    "in_place_shift_in_cross_entropy": ("softmax_cross_entropy", [("shifted = O - shift",
                                                                   "O -= shift\n    shifted = O")]),
    # softmax_regression_model
    "initial_weights_not_a_leaf": ("softmax_regression_model", [(
        "W = torch.normal(0.0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)",
        "W = torch.randn(num_inputs, num_outputs, requires_grad=True) * 0.01")]),
    "initial_bias_without_requires_grad": ("softmax_regression_model", [(
        "b = torch.zeros(num_outputs, requires_grad=True)", "b = torch.zeros(num_outputs)")]),
    # softmax_train_manual
    "parameters_frozen_after_training": ("softmax_train_manual", [(
        "    return history", "    W.requires_grad_(False)\n    b.requires_grad_(False)\n    return history")]),
    "training_data_centred_in_place": ("softmax_train_manual", [(
        'history = {"epoch": [], "train_loss": []}',
        'history = {"epoch": [], "train_loss": []}\n    X -= X.mean(dim=0)')]),
    "sgd_divides_the_mean_loss_by_the_batch_size_again": ("softmax_train_manual", [(
        SGD_STEP, "sgd([W, b], lr, batch_size)")]),
    "parameters_rebound_instead_of_updated": ("softmax_train_manual", [(SGD_STEP, """with torch.no_grad():
                W = W - lr * W.grad
                b = b - lr * b.grad""")]),
    "gradients_never_zeroed": ("softmax_train_manual", [(SGD_STEP, """with torch.no_grad():
                W -= lr * W.grad
                b -= lr * b.grad""")]),
    "labels_of_shape_n_by_1_in_the_manual_loop": ("softmax_train_manual", [(
        "softmax_regression(X_batch, W, b), y_batch)", "softmax_regression(X_batch, W, b), y_batch.reshape(-1, 1))")]),
    # softmax_train_fast
    "softmax_before_cross_entropy_loss": ("softmax_train_fast", [(
        "nn.Linear(num_inputs, num_outputs))", "nn.Linear(num_inputs, num_outputs), nn.Softmax(dim=1))")]),
    "nll_loss_module_on_raw_logits": ("softmax_train_fast", [(
        "loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.NLLLoss()")]),
    "float_labels_for_cross_entropy_loss": ("softmax_train_fast", [(
        "TensorDataset(X.to(device), y.to(device))", "TensorDataset(X.to(device), y.float().to(device))")]),
    "to_device_result_discarded": ("softmax_train_fast", [(
        "train_iter = DataLoader(TensorDataset(X.to(device), y.to(device))",
        "X.to(device)\n    y.to(device)\n    train_iter = DataLoader(TensorDataset(X, y)")]),
    "model_not_moved_to_the_device": ("softmax_train_fast", [(
        "net = softmax_net(X.shape[1], num_classes).to(device)", "net = softmax_net(X.shape[1], num_classes)")]),
    "labels_of_shape_n_by_1_for_cross_entropy_loss": ("softmax_train_fast", [(
        "TensorDataset(X.to(device), y.to(device))", "TensorDataset(X.to(device), y.reshape(-1, 1).to(device))")]),
}


def apply_edits(nb, task, edits):
    for old, new in edits:
        nb = edit_solution(nb, task, old, new)
    return nb


# Mistakes that the other lessons' banks also cover (training-loop updates) or that repeat a
# mechanism tested here already: run with the slow tests only.
EXTRA = {"gradients_never_zeroed", "parameters_rebound_instead_of_updated",
         "sgd_divides_the_mean_loss_by_the_batch_size_again", "model_not_moved_to_the_device"}


def mistake_groups():
    """The bank in groups of one mistake per task (tests.banks.one_per_task); the EXTRA ones apart, marked slow."""
    plain = {name: found for name, found in MISTAKES.items() if name not in EXTRA}
    extra = {name: found for name, found in MISTAKES.items() if name in EXTRA}
    return one_per_task(plain) + [pytest.param(group, marks=pytest.mark.slow) for group in one_per_task(extra)]


@pytest.mark.parametrize("group", mistake_groups(), ids="+".join)
def test_mistake_loses_exactly_its_task(reference, group):
    nb = reference
    for name in group:
        nb = apply_edits(nb, *MISTAKES[name])
    report = grade(nb)
    assert report.error is None
    assert report.failed_tasks() == {MISTAKES[name][0] for name in group}, outputs(report)
    for name in group:
        output = report.by_task[MISTAKES[name][0]].output
        assert output.strip() and "probe" not in output and "Traceback" not in output
        for phrase in FEEDBACK.get(name, ()):
            assert phrase in output, output


# What the feedback must say for some mistakes (the student sees what is wrong, not how it is tested).
FEEDBACK = {
    "naive_softmax_overflows": ["inf or NaN", "maximum"],
    "softmax_over_the_wrong_dim": ["sum to 1", "dim=1"],
    "in_place_max_shift_mutates_logits": ["modified O"],
    "log_of_softmax_underflows": ["inf or NaN", "log-sum-exp"],
    "initial_weights_not_a_leaf": ["leaf", "W from init_softmax_params", ".grad is None"],
    "initial_bias_without_requires_grad": ["leaf", "b from init_softmax_params", ".grad is None"],
    "softmax_result_detached": ["not connected to O"],
    "cross_entropy_rebuilt_from_its_value": ["not connected to O"],
    "in_place_shift_in_cross_entropy": ["modified its inputs"],
    "parameters_frozen_after_training": ["still be a leaf tensor that requires grad", ".grad is None"],
    "training_data_centred_in_place": ["modified X or y"],
    "softmax_before_cross_entropy_loss": ["accuracy", "cross-entropy", "needed <="],
    "float_labels_for_cross_entropy_loss": ["RuntimeError"],
    "to_device_result_discarded": ["returns a new tensor", "on ['cpu']"],
}


# Mistakes of different tasks graded together (each task is judged on its own): name -> {task: (old, new)}.
# Every notebook must lose exactly the tasks it changes.
GROUPED_MISTAKES = {
    "dtypes_shapes_scales_and_averages": {
        "softmax_stable": ("O_exp = torch.exp(O - shift)", "O_exp = torch.exp((O - shift).float())"),
        "softmax_cross_entropy": ("return -log_probs[torch.arange(O.shape[0]), y].mean()",
                                  "return -log_probs.gather(1, y.reshape(-1, 1)).mean(dim=0)"),
        "softmax_regression_model": ("W = torch.normal(0.0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)",
                                     "W = torch.randn(num_inputs, num_outputs, requires_grad=True)"),
        "softmax_train_manual": ("            total += loss.item() * len(X_batch)\n            count += len(X_batch)",
                                 "            total += loss.item()\n            count += 1"),
        "softmax_train_fast": ("torch.optim.SGD(net.parameters(), lr=lr)",
                               "torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)"),
    },
}


@pytest.mark.parametrize("name", sorted(GROUPED_MISTAKES))
def test_grouped_mistakes_lose_exactly_their_tasks(reference, name):
    expect_lost_exactly(grade(with_edits(reference, GROUPED_MISTAKES[name])), GROUPED_MISTAKES[name])


# Correct variants, each must get full marks. Variants of different tasks are graded together, two
# notebooks in all (each task is judged on its own, so they cannot hide each other's failures).
OWN_FAST_LOOP = '''
def softmax_net(num_inputs, num_outputs):
    """A bare linear layer, initialised N(0, 0.01^2) and zero."""
    net = nn.Linear(num_inputs, num_outputs)
    nn.init.normal_(net.weight, std=0.01)
    nn.init.zeros_(net.bias)
    return net


def train_softmax_fast(X, y, num_classes, lr, num_epochs, batch_size, device=None):
    """An own loop instead of fit, batches moved to the device one by one."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = softmax_net(X.shape[1], num_classes).to(device)
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        total = 0.0
        for X_batch, y_batch in loader:
            X_batch, y_batch = X_batch.to(device), y_batch.to(device)
            loss = criterion(model(X_batch), y_batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y_batch)
        history["epoch"].append(epoch)
        history["train_loss"].append(total / len(y))
    return model, history
'''

OTHER_MODEL = '''
def init_softmax_params(num_inputs, num_outputs):
    """Parameters filled in place, then marked as requiring grad."""
    weights = torch.empty(num_inputs, num_outputs).normal_(0, 0.01).requires_grad_()
    bias = torch.zeros(num_outputs).requires_grad_()
    return weights, bias


def softmax_regression(X, W, b):
    """torch.matmul form."""
    return torch.matmul(X, W) + b.reshape(1, -1)
'''

DATA_UPDATES_LOOP = '''
def train_softmax(W, b, X, y, lr, num_epochs, batch_size):
    """Own shuffling, the batch loss summed and the step scaled by hand, .data updates."""
    history = {"epoch": [], "train_loss": []}
    n = X.shape[0]
    for epoch in range(num_epochs):
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            l = cross_entropy(softmax_regression(X[rows], W, b), y[rows]) * len(rows)
            l.backward()
            for p in (W, b):
                p.data -= lr * p.grad.data / len(rows)
                p.grad = None
            total += l.item()
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total / n)
    return history
'''

VARIANTS = {
    "detached_max_shift+scaled_randn_init+own_fast_loop_with_other_init": [
        ("softmax_stable", "edit", [("shift = O.max(dim=1, keepdim=True).values",
                                     "shift = O.max(dim=1, keepdim=True).values.detach()")]),
        ("softmax_cross_entropy", "edit", [("shift = O.max(dim=1, keepdim=True).values",
                                            "shift = torch.max(O, dim=1, keepdim=True)[0].detach()")]),
        ("softmax_regression_model", "edit", [(
            "W = torch.normal(0.0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)",
            "W = (torch.randn(num_inputs, num_outputs) * 0.01).requires_grad_()")]),
        ("softmax_train_fast", "replace", OWN_FAST_LOOP),
    ],
    "log_softmax_and_nll_loss+logsumexp_softmax+data_updates": [
        ("softmax_stable", "replace", '''
def softmax(O):
    """Softmax as exp(O - logsumexp(O))."""
    return torch.exp(O - torch.logsumexp(O, dim=-1, keepdim=True))
'''),
        ("softmax_cross_entropy", "edit", [(CROSS_ENTROPY_BODY,
                                            "    return F.nll_loss(F.log_softmax(O, dim=1), y)")]),
        ("softmax_regression_model", "replace", OTHER_MODEL),
        ("softmax_train_manual", "replace", DATA_UPDATES_LOOP),
        ("softmax_train_fast", "edit", [("nn.Linear(num_inputs, num_outputs))",
                                         "nn.Linear(num_inputs, num_outputs), nn.LogSoftmax(dim=1))"),
                                        ("loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.NLLLoss()")]),
    ],
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_correct_variants_get_full_marks(reference, name):
    nb = reference
    for task, how, change in VARIANTS[name]:
        nb = apply_edits(nb, task, change) if how == "edit" else replace_solution(nb, task, change)
    report = grade(nb)
    assert report.failed_tasks() == set(), outputs(report)


# The course library's finished versions (no sandbox: plain imports).
@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids contention on a busy machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_library_softmax_and_cross_entropy_match_pytorch_and_are_stable(one_thread):
    import torch
    import torch.nn.functional as F

    from course.softmax_regression import cross_entropy, log_softmax, softmax

    O = torch.tensor([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0], [-1000.0, 999.0, 1000.0]], dtype=torch.float64)
    y = torch.tensor([2, 1, 0])
    torch.testing.assert_close(softmax(O), torch.softmax(O, dim=1), atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(log_softmax(O), F.log_softmax(O, dim=1), atol=1e-12, rtol=1e-9)
    O = O.requires_grad_()
    loss = cross_entropy(O, y)
    loss.backward()
    O_ref = O.detach().clone().requires_grad_()
    F.cross_entropy(O_ref, y).backward()
    torch.testing.assert_close(loss.detach(), F.cross_entropy(O_ref.detach(), y), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(O.grad, O_ref.grad, atol=1e-12, rtol=1e-9)
    with pytest.raises(TypeError):
        cross_entropy(O.detach(), y.float())


def test_library_training_reaches_high_accuracy_on_blobs(one_thread):
    import torch

    from course.datasets import make_blobs
    from course.softmax_regression import init_softmax_params, softmax_regression, train_softmax, train_softmax_fast
    from course.trainer import accuracy

    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    X, y = make_blobs(100, centers, seed=0)
    X_test, y_test = make_blobs(100, centers, seed=1)
    torch.manual_seed(0)
    W, b = init_softmax_params(2, 3)
    history = train_softmax(W, b, X, y, lr=0.5, num_epochs=5, batch_size=16)
    assert history["epoch"] == [1, 2, 3, 4, 5] and history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy(softmax_regression(X_test, W, b), y_test) > 0.9
    net, history = train_softmax_fast(X, y, 3, lr=0.5, num_epochs=5, batch_size=16, device=torch.device("cpu"))
    with torch.no_grad():
        assert accuracy(net(X_test), y_test) > 0.9
    assert len(history["train_loss"]) == 5


# The gradient check in the judging process (no sandbox: the probe runs here on a namespace of functions).
class _Namespace:
    def __init__(self, **functions):
        self.globals = functions

    def require(self, name, kind="function"):
        return self.globals[name]


class _LocalStudent:
    def __init__(self, **functions):
        self.ns = _Namespace(**functions)

    def probe(self, fn, *args, label=None, timeout=60, **kwargs):
        return fn(self.ns, *args, **kwargs)


def test_gradient_check_compares_autograd_with_finite_differences_of_the_students_values(one_thread):
    """A softmax whose backward is wrong in some directions (it drops the -p p^T part of the Jacobian) fails
    the check; a right one and PyTorch's pass. The finite differences are taken in the judging process."""
    import torch

    from autograder.judge.checks import GradingFailure
    from autograder.graders.softmax_regression import reference as G
    from autograder.graders.softmax_regression.test_softmax_cross_entropy import _labels

    class HalfBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, O):
            P = torch.softmax(O, dim=1)
            ctx.save_for_backward(P)
            return P

        @staticmethod
        def backward(ctx, grad):
            (P,) = ctx.saved_tensors
            return grad * P

    O = G._logits(6, 4, torch.float64, seed=4)
    G.check_gradcheck(_LocalStudent(softmax=lambda O: torch.softmax(O, dim=1)), "softmax", O)
    G.check_gradcheck(_LocalStudent(cross_entropy=lambda O, y: torch.nn.functional.cross_entropy(O, y)),
                       "cross_entropy", O, _labels(6, 4, seed=5))
    with pytest.raises(GradingFailure, match="differs from finite differences"):
        G.check_gradcheck(_LocalStudent(softmax=HalfBackward.apply), "softmax", O)
    with pytest.raises(GradingFailure, match="does not reach O"):
        G.check_gradcheck(_LocalStudent(softmax=lambda O: torch.softmax(O, dim=1).detach()), "softmax", O)
