"""06-mlp-gpu: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.notebooks import edit_solution, grade, release_notebook, replace_solution, source_notebook

A = "06-mlp-gpu"


@pytest.fixture(scope="module")
def reference():
    return source_notebook(A)


def failures(report):
    return {t.id: t.output for t in report.tasks if not t.passed}


def test_reference_gets_full_marks(reference):
    report = grade(reference)
    assert report.error is None
    assert report.failed_tasks() == set(), failures(report)
    assert report.score == report.max_score == 10


def test_untouched_release_gets_zero_on_every_task():
    report = grade(release_notebook(A))
    assert report.error is None
    assert report.score == 0
    assert report.failed_tasks() == {t.id for t in report.tasks}
    assert "not implemented yet" in report.by_task["device_helpers"].output


UNWEIGHTED_EVALUATE = '''
def evaluate(net, loss_fn, data_iter, metric=None):
    """Mean loss (and metric) over data_iter, in eval mode without gradients."""
    net.eval()
    losses, values, total_n = [], [], 0
    with torch.no_grad():
        for X, y in data_iter:
            loss, n, value = loss_batch(net, loss_fn, X, y, metric=metric)
            losses.append(loss * n)
            values.append(value)
            total_n += n
    return {"loss": sum(losses) / total_n,
            "metric": sum(values) / len(values) if metric is not None else None, "n": total_n}
'''

GRAPH_KEEPING_FIT = '''
def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    """Train net for num_epochs; returns the history."""
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_metric": []}
    for epoch in range(1, num_epochs + 1):
        net.train()
        total_loss, total_n = 0.0, 0
        for X, y in train_iter:
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss * len(X)
            total_n += len(X)
        history["epoch"].append(epoch)
        history["train_loss"].append(total_loss / total_n)
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            history["valid_loss"].append(result["loss"])
            history["valid_metric"].append(result["metric"])
    return history
'''

LAYERS_IN_FORWARD = '''
class MnistModel(nn.Module):
    """Feedforward network with one hidden layer."""

    def __init__(self, in_size=784, hidden_size=32, out_size=10):
        super().__init__()
        self.sizes = (in_size, hidden_size, out_size)

    def forward(self, X):
        in_size, hidden_size, out_size = self.sizes
        X = X.reshape(X.shape[0], -1)
        return nn.Linear(hidden_size, out_size)(F.relu(nn.Linear(in_size, hidden_size)(X)))


loss_fn = F.cross_entropy
'''

# name: (task whose solution is edited, old text, new text); each loses exactly that task.
MISTAKES = {
    "softmax_before_cross_entropy": ("mnist_mlp", "return self.linear2(F.relu(self.linear1(X)))",
                                     "return F.softmax(self.linear2(F.relu(self.linear1(X))), dim=1)"),
    "flatten_without_start_dim": ("mnist_mlp", "X = X.reshape(X.shape[0], -1)", "X = torch.flatten(X)"),
    "no_relu": ("mnist_mlp", "return self.linear2(F.relu(self.linear1(X)))",
                "return self.linear2(self.linear1(X))"),
    "batch_to_device_discarded": ("device_helpers", "yield to_device(batch, self.device)",
                                  "to_device(batch, self.device)\n            yield batch"),
    "hard_coded_cuda": ("device_helpers", "return data.to(device, non_blocking=True)", "return data.cuda()"),
    "always_cuda": ("device_helpers",
                    'return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")',
                    'return torch.device("cuda")'),
    "loss_returned_as_tensor": ("loss_batch", "return loss.item(), len(X), value", "return loss, len(X), value"),
    "evaluate_without_eval_mode": ("evaluate_loop", "    net.eval()\n", ""),
    "evaluate_with_gradients": ("evaluate_loop", "with torch.no_grad():", "if True:"),
    "fit_never_back_to_train_mode": ("fit_loop", "        net.train()\n", ""),
}
REPLACED = {
    "layers_created_in_forward": ("mnist_mlp", LAYERS_IN_FORWARD),
    "accuracy_averaged_over_batches": ("evaluate_loop", UNWEIGHTED_EVALUATE),
    "loss_tensors_accumulated_with_graphs": ("fit_loop", GRAPH_KEEPING_FIT),
}


# Mistakes beyond the list, and extra variants: marked slow (each grading starts a sandbox).
EXTRA = {"no_relu", "always_cuda", "evaluate_with_gradients", "list_returning_to_device", "sum_based_accuracy",
         "inference_mode_restoring_the_mode", "inline_loop_with_floats"}


def cases(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in EXTRA else n for n in sorted(names)]


@pytest.mark.parametrize("name", cases(list(MISTAKES) + list(REPLACED)))
def test_mistake_loses_exactly_its_task(reference, name):
    if name in MISTAKES:
        task, old, new = MISTAKES[name]
        nb = edit_solution(reference, task, old, new)
    else:
        task, source = REPLACED[name]
        nb = replace_solution(reference, task, source)
    report = grade(nb)
    assert report.failed_tasks() == {task}, failures(report)
    assert report.by_task[task].output.strip()


@pytest.mark.slow
def test_softmax_mistake_is_caught_by_the_loss():
    task, old, new = MISTAKES["softmax_before_cross_entropy"]
    report = grade(edit_solution(source_notebook(A), task, old, new), task_ids=["mnist_mlp"])
    assert "softmax" in report.by_task["mnist_mlp"].output


VARIANTS = {
    "sequential_with_cross_entropy_module": ("mnist_mlp", '''
def MnistModel(in_size=784, hidden_size=32, out_size=10):
    """The MLP as an nn.Sequential."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, out_size))


loss_fn = nn.CrossEntropyLoss()
'''),
    "log_softmax_with_nll_loss": ("mnist_mlp", '''
class MnistModel(nn.Module):
    """Hidden layer, ReLU, output layer, log-probabilities."""

    def __init__(self, in_size=784, hidden_size=32, out_size=10):
        super().__init__()
        self.hidden = nn.Linear(in_size, hidden_size)
        self.out = nn.Linear(hidden_size, out_size)

    def forward(self, xb):
        xb = xb.view(xb.size(0), -1)
        return F.log_softmax(self.out(torch.relu(self.hidden(xb))), dim=1)


loss_fn = F.nll_loss
'''),
    "list_returning_to_device": ("device_helpers", '''
def get_default_device():
    """Pick GPU if available, else CPU."""
    if torch.cuda.is_available():
        return torch.device('cuda')
    else:
        return torch.device('cpu')


def to_device(data, device):
    """Move tensor(s) to chosen device."""
    if isinstance(data, (list, tuple)):
        return [to_device(x, device) for x in data]
    return data.to(device, non_blocking=True)


class DeviceDataLoader():
    """Wrap a dataloader to move data to a device."""
    def __init__(self, dl, device):
        self.dl = dl
        self.device = device

    def __iter__(self):
        """Yield a batch of data after moving it to device."""
        for b in self.dl:
            yield to_device(b, self.device)

    def __len__(self):
        """Number of batches."""
        return len(self.dl)
'''),
    "sum_based_accuracy": ("loss_batch", '''
def accuracy(outputs, labels):
    _, preds = torch.max(outputs, dim=1)
    return torch.sum(preds == labels).item() / len(preds)


def loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
    preds = net(X)
    loss = loss_fn(preds, y)
    if optimizer is not None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    metric_result = None
    if metric is not None:
        metric_result = metric(preds, y)
    return loss.item(), len(X), metric_result
'''),
    "inference_mode_restoring_the_mode": ("evaluate_loop", '''
def evaluate(net, loss_fn, data_iter, metric=None):
    """Weighted means over data_iter in eval mode; restores the previous mode."""
    was_training = net.training
    net.eval()
    results = []
    with torch.inference_mode():
        for X, y in data_iter:
            results.append(loss_batch(net, loss_fn, X, y, metric=metric))
    net.train(was_training)
    n = sum(r[1] for r in results)
    loss = sum(r[0] * r[1] for r in results) / n
    value = sum(r[2] * r[1] for r in results) / n if metric is not None else None
    return {"loss": loss, "metric": value, "n": n}
'''),
    "inline_loop_with_floats": ("fit_loop", '''
def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    """Train net for num_epochs; returns the history."""
    history = {}
    for epoch in range(num_epochs):
        net.train()
        seen, running = 0, 0.0
        for X, y in train_iter:
            optimizer.zero_grad()
            loss = loss_fn(net(X), y)
            loss.backward()
            optimizer.step()
            running += loss.detach().item() * X.shape[0]
            seen += X.shape[0]
        record = {"epoch": epoch + 1, "train_loss": running / seen}
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            record.update(valid_loss=result["loss"], valid_metric=result["metric"])
        for key, value in record.items():
            history.setdefault(key, []).append(value)
    return history
'''),
}


@pytest.mark.parametrize("name", cases(VARIANTS))
def test_correct_variant_gets_full_marks(reference, name):
    task, source = VARIANTS[name]
    report = grade(replace_solution(reference, task, source))
    assert report.failed_tasks() == set(), failures(report)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_code_trains_unchanged_on_cuda(reference):
    import torch
    from autograder.notebook import program_cells
    ns = {"__name__": "__main__"}
    for _, source in program_cells(reference):
        exec(compile(source, "<cell>", "exec"), ns)
    device = ns["get_default_device"]()
    assert device.type == "cuda"
    X, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    loader = ns["DeviceDataLoader"](torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y),
                                                                batch_size=64), device)
    assert all(t.is_cuda for batch in loader for t in batch)
    net = ns["MnistModel"](784, 32, 10).to(device)
    history = ns["fit"](net, ns["loss_fn"], torch.optim.SGD(net.parameters(), lr=0.1), loader, 2, loader,
                        ns["accuracy"])
    assert len(history["valid_metric"]) == 2 and history["train_loss"][1] < history["train_loss"][0]
