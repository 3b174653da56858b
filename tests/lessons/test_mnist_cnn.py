"""07-mnist-cnn: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.banks import one_per_task
from tests.notebooks import edit_solution, grade, judge_in_process, replace_solution

A = "07-mnist-cnn"


def failures(report):
    return {t.id: t.output for t in report.tasks if not t.passed}


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


@pytest.mark.parametrize("group", one_per_task({**MISTAKES, **REPLACED}), ids="+".join)
def test_mistake_loses_exactly_its_task(reference, group):
    nb, tasks = reference, set()
    for name in group:
        if name in MISTAKES:
            task, old, new = MISTAKES[name]
            nb = edit_solution(nb, task, old, new)
        else:
            task, source = REPLACED[name]
            nb = replace_solution(nb, task, source)
        tasks.add(task)
    report = grade(nb)
    assert report.failed_tasks() == tasks, failures(report)
    assert all(report.by_task[task].output.strip() for task in tasks)


# ------------------------------------------------------------------------------ more realistic mistakes
# The published example's loops and ConvNet with one slip each. The graders of each task call only that
# task's functions (Net is trained by the graders' own loop), so mistakes in different tasks can share a
# grading: each group below holds at most one mistake per task, is graded in full, and must lose exactly
# the tasks of its mistakes, each with the message that names the slip.
BOOK_TRAIN = """
def train(model, device, train_loader, optimizer, epoch, log_interval=100):
    model.train()
    total, count = 0.0, 0
    for batch_idx, (data, target) in enumerate(train_loader):
        {move}
        {zero_grad}
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        {accumulate}
        if batch_idx % {interval} == 0:
            print('Train Epoch: {{}} [{{}}/{{}} ({{:.0f}}%)]\\tLoss: {{:.6f}}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
    return {result}
"""
BOOK_TEST = """
def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            {move}
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum(){item}
    test_loss /= len(test_loader.dataset)
    print('\\nTest set: Average loss: {{:.4f}}, Accuracy: {{}}/{{}} ({{:.0f}}%)\\n'.format(
        test_loss, correct, len(test_loader.dataset), 100. * correct / len(test_loader.dataset)))
    return test_loss, {accuracy}
"""
BOOK_DEFAULTS = {"move": "data, target = data.to(device), target.to(device)", "zero_grad": "optimizer.zero_grad()",
                 "accumulate": "total, count = total + loss.item() * len(data), count + len(data)",
                 "interval": "log_interval", "result": "total / count", "item": ".item()",
                 "accuracy": "correct / len(test_loader.dataset)"}


def book_loops(**changes):
    """The published example's train() and test(), with ``changes`` to the marked places."""
    fields = dict(BOOK_DEFAULTS, **changes)
    train_fields = {k: fields[k] for k in ("move", "zero_grad", "accumulate", "interval", "result")}
    test_fields = {k: fields.get("test_" + k, BOOK_DEFAULTS[k]) for k in ("move", "item", "accuracy")}
    return BOOK_TRAIN.format(**train_fields) + "\n" + BOOK_TEST.format(**test_fields)


BOOK_NET = """
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, {conv2})
        self.dropout1 = nn.{dropout}({p1})
        self.dropout2 = nn.{dropout}({p2})
        self.fc1 = nn.Linear({features}, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        {relu2}
        x = F.{pool}(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.{output}(x, dim=1)
        return output


def make_optimizer(net):
    return {optimizer}
"""
NET_DEFAULTS = {"conv2": "32, 3, 1", "dropout": "Dropout", "p1": "0.25", "p2": "0.5", "features": "4608",
                "relu2": "x = F.relu(x)", "pool": "max_pool2d", "output": "log_softmax",
                "optimizer": "optim.Adadelta(net.parameters(), lr=0.5)"}


def book_net(**changes):
    """The published example's Net (the lesson's sizes) and make_optimizer, with ``changes``."""
    return BOOK_NET.format(**dict(NET_DEFAULTS, **changes))


PREDICT = """
def predict_image(net, image):
    {mode}
    device = next(net.parameters()).device
    {grad}
        y_hat = net({batch})
    return {result}
"""
PREDICT_DEFAULTS = {"mode": "net.eval()", "grad": "with torch.no_grad():", "batch": "image.unsqueeze(0).to(device)",
                    "result": "y_hat.argmax(dim=1).item()"}


def predict(**changes):
    """A plain predict_image, with ``changes``."""
    return PREDICT.format(**dict(PREDICT_DEFAULTS, **changes))


# name: {task: solution source}; each group loses exactly its tasks.
GROUPS = {
    # forgets optimizer.zero_grad() (gradients pile up) / forgets no_grad when predicting
    "no_zero_grad+predict_with_gradients": {
        "cnn_train_test": book_loops(zero_grad="pass"),
        "predict_image": predict(grad="if True:")},
    # softmax instead of log_softmax / data.to(device) with the result thrown away / image left on the CPU
    "softmax_output+train_to_device_discarded+predict_ignores_device": {
        "mnist_cnn": book_net(output="softmax"),
        "cnn_train_test": book_loops(move="data.to(device); target.to(device)"),
        "predict_image": predict(batch="image.unsqueeze(0)")},
    # average pooling / test's batches never moved / returns a 1-element tensor
    "avg_pool+test_to_device_discarded+predict_returns_tensor": {
        "mnist_cnn": book_net(pool="avg_pool2d"),
        "cnn_train_test": book_loops(test_move="data.to(device)\n            target.to(device)"),
        "predict_image": predict(result="y_hat.argmax(dim=1)")},
    # Adam from another tutorial / mean of the batch losses (the small last batch counts as a full one)
    "adam+train_mean_over_batches": {
        "mnist_cnn": book_net(optimizer="optim.Adam(net.parameters(), lr=1e-3)"),
        "cnn_train_test": book_loops(accumulate="total, count = total + loss.item(), count + 1")},
    # dropout rates swapped / the returned loss is a tensor holding the graph
    "dropout_rates_swapped+train_returns_tensor": {
        "mnist_cnn": book_net(p1="0.5", p2="0.25"),
        "cnn_train_test": book_loops(accumulate="total, count = total + loss * len(data), count + len(data)")},
    # the optimiser of a new network / accuracy as a percentage, as the example prints it
    "optimizer_of_a_new_net+test_percentage": {
        "mnist_cnn": book_net(optimizer="optim.Adadelta(Net().parameters(), lr=0.5)"),
        "cnn_train_test": book_loops(test_accuracy="100. * correct / len(test_loader.dataset)")},
    # 5x5 kernels in conv2 (fc1 resized to match) / a fixed logging interval
    "conv2_kernel_5+fixed_log_interval": {
        "mnist_cnn": book_net(conv2="32, 5, 1", features="3872"),
        "cnn_train_test": book_loops(interval="100")},
    # no ReLU after conv2 / correct predictions counted as a tensor (no .item())
    "no_relu_after_conv2+test_counts_tensor": {
        "mnist_cnn": book_net(relu2="pass"),
        "cnn_train_test": book_loops(test_item="")},
}
# The consequence checks: the optimiser's steps replayed by the judge, the modes seen in the recording
# model's running statistics.
GROUPS.update({
    # Adadelta over the last layer only / test() without net.eval()
    "adadelta_on_fc2_only+test_without_eval": {
        "mnist_cnn": book_net(optimizer="optim.Adadelta(net.fc2.parameters(), lr=0.5)"),
        "cnn_train_test": book_loops().replace("    model.eval()\n", "")},
    # Adadelta at its default learning rate (1.0) / predict_image left in train mode
    "adadelta_default_lr+predict_in_train_mode": {
        "mnist_cnn": book_net(optimizer="optim.Adadelta(net.parameters())"),
        "predict_image": predict(mode="pass")},
    # SGD at the lesson's rate / train() without net.train() / test() without torch.no_grad()
    "sgd+train_without_train_mode": {
        "mnist_cnn": book_net(optimizer="optim.SGD(net.parameters(), lr=0.5)"),
        "cnn_train_test": book_loops().replace("    model.train()\n", "")},
    "adadelta_with_weight_decay+test_with_gradients": {
        "mnist_cnn": book_net(optimizer="optim.Adadelta(net.parameters(), lr=0.5, weight_decay=1e-2)"),
        "cnn_train_test": book_loops().replace("    with torch.no_grad():\n        for data, target in test_loader:",
                                               "    if True:\n        for data, target in test_loader:")},
})
# Round 3: requirements at their edges. log(softmax(...)) instead of log_softmax (-inf where the scores lie far
# apart) / the book's log line without the epoch (the old check found a "7" among the printed percentages).
GROUPS["log_of_softmax+log_line_without_epoch"] = {
    "mnist_cnn": book_net(output="log_softmax").replace("output = F.log_softmax(x, dim=1)",
                                                        "output = torch.log(F.softmax(x, dim=1))"),
    "cnn_train_test": book_loops().replace("'Train Epoch: {{}} [".replace("{{}}", "{}"), "'Train: [")
                                  .replace("epoch, batch_idx * len(data)", "batch_idx * len(data)"),
}
GROUP_MESSAGES = {
    "log_of_softmax+log_line_without_epoch": {"mnist_cnn": "underflows", "cnn_train_test": "name the epoch"},
    "adadelta_on_fc2_only+test_without_eval": {"mnist_cnn": "every parameter of net",
                                               "cnn_train_test": "net.eval()"},
    "adadelta_default_lr+predict_in_train_mode": {"mnist_cnn": "lr=0.5", "predict_image": "net.eval()"},
    "sgd+train_without_train_mode": {"mnist_cnn": "Adadelta", "cnn_train_test": "net.train()"},
    "adadelta_with_weight_decay+test_with_gradients": {"mnist_cnn": "weight decay",
                                                       "cnn_train_test": "torch.no_grad()"},
    "no_zero_grad+predict_with_gradients": {"cnn_train_test": "zero_grad", "predict_image": "no_grad"},
    "softmax_output+train_to_device_discarded+predict_ignores_device": {
        "mnist_cnn": "log_softmax", "cnn_train_test": "X.to(device)", "predict_image": "device"},
    "avg_pool+test_to_device_discarded+predict_returns_tensor": {
        "mnist_cnn": "max_pool2d", "cnn_train_test": "test does not work", "predict_image": "Python int"},
    "adam+train_mean_over_batches": {"mnist_cnn": "Adadelta", "cnn_train_test": "averaged the loss over batches"},
    "dropout_rates_swapped+train_returns_tensor": {"mnist_cnn": "dropout 0.25", "cnn_train_test": "Python float"},
    "optimizer_of_a_new_net+test_percentage": {"mnist_cnn": "every parameter of net",
                                               "cnn_train_test": "percentage"},
    "conv2_kernel_5+fixed_log_interval": {"mnist_cnn": "parameters", "cnn_train_test": "log_interval"},
    "no_relu_after_conv2+test_counts_tensor": {"mnist_cnn": "ReLU", "cnn_train_test": "Python floats"},
}


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_mistakes_lose_exactly_their_tasks(reference, name):
    nb = reference
    for task, source in GROUPS[name].items():
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.error is None
    assert report.failed_tasks() == set(GROUPS[name]), failures(report)
    for task, phrase in GROUP_MESSAGES[name].items():
        output = report.by_task[task].output
        assert phrase in output, (task, output)


def test_dropout_message_names_dropout_first(reference):
    """Dropout left on in eval mode is reported as such, not as a problem of the flatten."""
    nb = replace_solution(reference, "mnist_cnn", FUNCTIONAL_DROPOUT.replace("{flag}", ""))
    report = grade(nb, task_ids=["mnist_cnn"])
    output = report.by_task["mnist_cnn"].output.strip()
    assert "Dropout is still active after net.eval()" in output.splitlines()[0], output
    assert "flatten" not in output.lower(), output


# More mistakes of train / test at their edges, each judged in this process with its own task's graders only
# (fast; the grouped gradings above show that an edit confined to one task's cell costs no other task).
SINGLE_TASK_MISTAKES = {
    # logs after every log_interval batches, so an epoch shorter than log_interval prints nothing
    "log_after_the_interval": ("cnn_train_test", book_loops().replace(
        "if batch_idx % log_interval == 0", "if (batch_idx + 1) % log_interval == 0"), "printed nothing"),
    # squeezes the model's output: a last batch of one image loses its batch dimension
    "train_squeezes_the_output": ("cnn_train_test", book_loops().replace(
        "output = model(data)\n        loss", "output = model(data).squeeze()\n        loss"), "41 images"),
    "test_squeezes_the_output": ("cnn_train_test", book_loops().replace(
        "output = model(data)\n            test_loss", "output = model(data).squeeze()\n            test_loss"),
        "17 images"),
}


@pytest.mark.parametrize("name", sorted(SINGLE_TASK_MISTAKES))
def test_single_task_mistake_fails_its_task(reference, name):
    task, source, words = SINGLE_TASK_MISTAKES[name]
    messages = judge_in_process(replace_solution(reference, task, source), A, task)
    assert messages and any(words in m for m in messages), messages


# Round 3: correct answers close to the new edge checks: a stable log-softmax written with logsumexp; train /
# test that log a zero-padded epoch, reshape instead of squeeze, and count images with len(dataset).
ROUND3_VARIANTS = {
    "log_softmax_by_logsumexp": ("mnist_cnn", book_net(output="log_softmax").replace(
        "output = F.log_softmax(x, dim=1)", "output = x - torch.logsumexp(x, dim=1, keepdim=True)")),
    "zero_padded_epoch_and_reshaped_predictions": ("cnn_train_test", '''
def train(net, device, train_iter, optimizer, epoch, log_interval=100):
    net.train()
    running, seen = 0.0, 0
    for batch_idx, (X, y) in enumerate(train_iter):
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(net(X), y.reshape(-1))
        loss.backward()
        optimizer.step()
        running += loss.item() * X.size(0)
        seen += X.size(0)
        if not batch_idx % log_interval:
            print(f"Epoch {epoch:03d} | batch {batch_idx:04d}/{len(train_iter):04d} | loss {loss.item():.4f}")
    print(f"Epoch {epoch:03d} done: mean loss {running / len(train_iter.dataset):.4f}")
    return running / len(train_iter.dataset)


def test(net, device, test_iter):
    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for X, y in test_iter:
            X, y = X.to(device), y.to(device)
            out = net(X)
            loss_sum += F.nll_loss(out, y, reduction="sum").item()
            correct += int((out.argmax(dim=1, keepdim=True).squeeze(1) == y).sum())
    n = len(test_iter.dataset)
    print(f"Test: loss {loss_sum / n:.4f}, accuracy {correct}/{n}")
    return loss_sum / n, correct / n
'''),
}


@pytest.mark.parametrize("name", sorted(ROUND3_VARIANTS))
def test_round3_variant_is_accepted(reference, name):
    task, source = ROUND3_VARIANTS[name]
    assert judge_in_process(replace_solution(reference, task, source), A, task) == []


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
}
# Mastering PyTorch, ch. 1, as printed: its layer names, Dropout2d(0.10) and Dropout2d(0.25), Adadelta lr 0.5.
MASTERING_PYTORCH_CH1 = """
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.cn1 = nn.Conv2d(1, 16, 3, 1)
        self.cn2 = nn.Conv2d(16, 32, 3, 1)
        self.dp1 = nn.Dropout2d(0.10)
        self.dp2 = nn.Dropout2d(0.25)
        self.fc1 = nn.Linear(4608, 64) # 4608 is basically 12 X 12 X 32
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.cn1(x)
        x = F.relu(x)
        x = self.cn2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dp1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dp2(x)
        x = self.fc2(x)
        op = F.log_softmax(x, dim=1)
        return op


def make_optimizer(net):
    return optim.Adadelta(net.parameters(), lr=0.5)
"""
NEW_VARIANTS = {
    "dropout2d_as_published": ("mnist_cnn", book_net(dropout="Dropout2d")),   # warns on the 2-D features
    "mastering_pytorch_ch1": ("mnist_cnn", MASTERING_PYTORCH_CH1),
    "dropout_after_flatten_relu_after_pool": ("mnist_cnn", '''
class Net(nn.Module):
    """Pooling before the ReLU (the same values), dropout on the flattened features (the same rate)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3))
        self.classifier = nn.Sequential(nn.Dropout(p=0.25), nn.Linear(32 * 12 * 12, 64), nn.ReLU(),
                                        nn.Dropout(p=0.5), nn.Linear(64, 10))

    def forward(self, X):
        X = F.relu(F.max_pool2d(self.features(X), kernel_size=2))
        return self.classifier(X.reshape(X.shape[0], -1)).log_softmax(dim=-1)


def make_optimizer(net):
    return torch.optim.Adadelta(params=net.parameters(), lr=5e-1)
'''),
}
VARIANTS.update({
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
})
NEW_VARIANTS.update({
    "train_numpy_mean_with_tqdm": ("cnn_train_test", '''
import numpy as np
from tqdm.auto import tqdm


def train(net, device, train_iter, optimizer, epoch, log_interval=100):
    """One epoch; a progress bar, and the mean of the per-image losses with NumPy (np.float64)."""
    net.train()
    losses, sizes = [], []
    for batch_idx, (X, y) in enumerate(tqdm(train_iter, desc=f"epoch {epoch}", leave=False)):
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(X), y)          # log_softmax is idempotent: the same as nll_loss here
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(y))
        if batch_idx % log_interval == 0:
            tqdm.write(f"epoch {epoch} [{sum(sizes)}/{len(train_iter.dataset)}] loss {loss.item():.4f}")
    print("epoch", epoch, "done")
    return np.average(losses, weights=sizes)


def test(net, device, test_iter):
    """Loss and accuracy with NumPy counting."""
    net.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for X, y in test_iter:
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            total_loss += F.nll_loss(y_hat, y, reduction="sum").item()
            correct += np.sum((y_hat.argmax(dim=1) == y).cpu().numpy())
    n = len(test_iter.dataset)
    print(f"test loss {total_loss / n:.4f}, accuracy {correct / n:.3f}")
    return float(total_loss / n), float(correct / n)
'''),
    "predict_with_argmax_index": ("predict_image", '''
def predict_image(net, image):
    device = next(net.parameters()).device
    net.eval()
    with torch.no_grad():
        scores = net(image.reshape(1, 1, 28, 28).to(device))
    return int(torch.argmax(scores, dim=1)[0])
'''),
})
# Variants of different tasks share a grading (the graders of each task call only its functions).
VARIANT_GROUPS = [["dropout2d_as_published", "train_numpy_mean_with_tqdm", "predict_with_argmax_index"],
                  ["dropout_after_flatten_relu_after_pool"], ["mastering_pytorch_ch1"]]


@pytest.mark.parametrize("name", cases(VARIANTS))
def test_correct_variant_gets_full_marks(reference, name):
    task, source = VARIANTS[name]
    report = grade(replace_solution(reference, task, source))
    assert report.failed_tasks() == set(), failures(report)


@pytest.mark.parametrize("group", VARIANT_GROUPS, ids="+".join)
def test_correct_variants_get_full_marks(reference, group):
    nb = reference
    for name in group:
        task, source = NEW_VARIANTS[name]
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.error is None
    assert report.failed_tasks() == set(), failures(report)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_code_trains_unchanged_on_cuda(reference):
    import contextlib
    import io
    import torch
    from autograder.judge.notebook import program_cells
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
