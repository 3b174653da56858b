"""07-mnist-cnn: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.notebooks import edit_solution, grade, release_notebook, replace_solution, source_notebook

A = "07-mnist-cnn"


@pytest.fixture(scope="module")
def reference():
    return source_notebook(A)


def failures(report):
    return {t.id: t.output for t in report.tasks if not t.passed}


def test_reference_gets_full_marks(reference):
    report = grade(reference)
    assert report.error is None
    assert report.failed_tasks() == set(), failures(report)
    assert report.score == report.max_score == 8


def test_untouched_release_gets_zero_on_every_task():
    report = grade(release_notebook(A))
    assert report.error is None
    assert report.score == 0
    assert report.failed_tasks() == {t.id for t in report.tasks}
    assert "not implemented yet" in report.by_task["mnist_cnn"].output


FUNCTIONAL_DROPOUT = '''
class Net(nn.Module):
    """ConvNet with functional dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1)
        self.fc1 = nn.Linear(4608, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, X):
        X = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(X)))), 2)
        X = F.dropout(X, 0.25{flag})
        X = F.relu(self.fc1(torch.flatten(X, 1)))
        X = F.dropout(X, 0.5{flag})
        return F.log_softmax(self.fc2(X), dim=1)


def make_optimizer(net):
    return optim.Adadelta(net.parameters(), lr=0.5)
'''

LAYERS_IN_FORWARD = '''
class Net(nn.Module):
    """ConvNet whose layers are made in forward."""

    def forward(self, X):
        X = F.relu(nn.Conv2d(1, 16, 3, 1)(X))
        X = F.relu(nn.Conv2d(16, 32, 3, 1)(X))
        X = nn.Dropout(0.25)(F.max_pool2d(X, 2))
        X = F.relu(nn.Linear(4608, 64)(torch.flatten(X, 1)))
        return F.log_softmax(nn.Linear(64, 10)(nn.Dropout(0.5)(X)), dim=1)


def make_optimizer(net):
    return optim.Adadelta(net.parameters(), lr=0.5)
'''

BATCH_AVERAGED_TEST = '''
def train(net, device, train_iter, optimizer, epoch, log_interval=100):
    """One epoch of training."""
    net.train()
    total_loss, total_n = 0.0, 0
    for batch_idx, (X, y) in enumerate(train_iter):
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(net(X), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(X)
        total_n += len(X)
        if batch_idx % log_interval == 0:
            print(f"epoch {epoch}: loss {loss.item():.4f}")
    return total_loss / total_n


def test(net, device, test_iter):
    """Mean of the batch losses and batch accuracies."""
    net.eval()
    losses, accs = [], []
    with torch.no_grad():
        for X, y in test_iter:
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            losses.append(F.nll_loss(y_hat, y).item())
            accs.append((y_hat.argmax(dim=1) == y).float().mean().item())
    return sum(losses) / len(losses), sum(accs) / len(accs)
'''

# name: (task whose solution is edited, old text, new text); each loses exactly that task.
MISTAKES = {
    "view_reshapes_the_batch": ("mnist_cnn", "X = F.max_pool2d(X, 2)\n        X = self.dropout1(X)\n"
                                "        X = torch.flatten(X, 1)",
                                "X = self.dropout1(X)\n        X = X.view(-1, 4608)"),
    "flatten_without_start_dim": ("mnist_cnn", "X = torch.flatten(X, 1)", "X = torch.flatten(X)"),
    "no_log_softmax": ("mnist_cnn", "return F.log_softmax(X, dim=1)", "return X"),
    "test_without_eval_mode": ("cnn_train_test", "    net.eval()\n", ""),
    "train_never_back_to_train_mode": ("cnn_train_test", "    net.train()\n", ""),
    "predict_without_eval_mode": ("predict_image", "    net.eval()\n", ""),
}
REPLACED = {
    "dropout_without_training_flag": ("mnist_cnn", FUNCTIONAL_DROPOUT.replace("{flag}", "")),
    "layers_created_in_forward": ("mnist_cnn", LAYERS_IN_FORWARD),
    "test_averaged_over_batches": ("cnn_train_test", BATCH_AVERAGED_TEST),
}


# Mistakes beyond the list, and extra variants: marked slow (each grading starts a sandbox).
EXTRA = {"no_log_softmax", "test_averaged_over_batches", "functional_dropout_with_training_flag",
         "predict_with_inference_mode"}


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


VARIANTS = {
    "sequential": ("mnist_cnn", '''
def Net():
    """The ConvNet as an nn.Sequential."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(4608, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10), nn.LogSoftmax(dim=1))


def make_optimizer(net):
    return optim.Adadelta(net.parameters(), lr=0.5)
'''),
    "functional_dropout_with_training_flag": ("mnist_cnn",
                                              FUNCTIONAL_DROPOUT.replace("{flag}", ", training=self.training")),
    "dropout2d_on_features_and_adam": ("mnist_cnn", '''
class Net(nn.Module):
    """Dropout2d after pooling and (as published code does) on the 2-D features; Adam."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(4608, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout1(x)
        x = x.reshape(x.shape[0], -1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def make_optimizer(net):
    return optim.Adam(net.parameters(), lr=1e-3)
'''),
    "cross_entropy_on_log_probabilities": ("cnn_train_test", '''
def train(model, device, train_loader, optimizer, epoch, log_interval=100):
    model.train()
    losses, sizes = [], []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(data))
        if batch_idx % log_interval == 0:
            print('Train Epoch: {} [{}/{}]\\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset), loss.item()))
    return sum(l * s for l, s in zip(losses, sizes)) / sum(sizes)


def test(model, device, test_loader):
    model.eval()
    test_loss, correct, total = 0, 0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.cross_entropy(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
            total += len(data)
    test_loss /= total
    print('Test set: Average loss: {:.4f}, Accuracy: {}/{}'.format(test_loss, correct, total))
    return test_loss, correct / total
'''),
    "predict_with_inference_mode": ("predict_image", '''
def predict_image(net, image):
    net.eval()
    with torch.inference_mode():
        scores = net(image[None].to(next(net.parameters()).device))
    return scores.argmax().item()
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
    import contextlib
    import io
    import torch
    from autograder.notebook import program_cells
    ns = {"__name__": "__main__"}
    for _, source in program_cells(reference):
        exec(compile(source, "<cell>", "exec"), ns)
    device = torch.device("cuda")
    X, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)
    net = ns["Net"]().to(device)
    with contextlib.redirect_stdout(io.StringIO()):
        loss = ns["train"](net, device, loader, ns["make_optimizer"](net), 1)
        test_loss, acc = ns["test"](net, device, loader)
    assert isinstance(loss, float) and 0 <= acc <= 1
    assert ns["predict_image"](net, X[0]) in range(10)
