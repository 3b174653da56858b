"""06-mlp-gpu: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.notebooks import edit_solution, grade, judge_in_process, replace_solution

A = "06-mlp-gpu"


def failures(report):
    return {t.id: t.output for t in report.tasks if not t.passed}


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
    return {"loss": float(sum(losses)) / total_n,
            "metric": float(sum(values)) / len(values) if metric is not None else None, "n": total_n}
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

# The first mistakes of the bank, in the grouped format below: {name: (task, edit, words in the feedback)}.
EARLIER = {
    "softmax_before_cross_entropy": ("mnist_mlp", ("return self.linear2(F.relu(self.linear1(X)))",
                                                   "return F.softmax(self.linear2(F.relu(self.linear1(X))), dim=1)"),
                                     "softmax"),
    "flatten_without_start_dim": ("mnist_mlp", ("X = X.reshape(X.shape[0], -1)", "X = torch.flatten(X)"),
                                  "MnistModel"),
    "no_relu": ("mnist_mlp", ("return self.linear2(F.relu(self.linear1(X)))", "return self.linear2(self.linear1(X))"),
                "linear map"),
    "layers_created_in_forward": ("mnist_mlp", LAYERS_IN_FORWARD, "trainable parameters"),
    "batch_to_device_discarded": ("device_helpers", ("yield to_device(batch, self.device)",
                                                     "to_device(batch, self.device)\n            yield batch"),
                                  "moved to its device"),
    "hard_coded_cuda": ("device_helpers", ("return data.to(device, non_blocking=True)", "return data.cuda()"),
                        "to_device"),
    "always_cuda": ("device_helpers", ('return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")',
                                       'return torch.device("cuda")'), "no GPU was available"),
    "loss_kept_with_its_graph": ("loss_batch", ("return loss.detach(), len(X), value", "return loss, len(X), value"),
                                 "computation graph"),
    "evaluate_without_eval_mode": ("evaluate_loop", ("    net.eval()\n", ""), "training mode"),
    "evaluate_with_gradients": ("evaluate_loop", ("with torch.no_grad():", "if True:"), "gradients enabled"),
    "accuracy_averaged_over_batches": ("evaluate_loop", UNWEIGHTED_EVALUATE, "without weighting"),
    "fit_never_back_to_train_mode": ("fit_loop", ("        net.train()\n", ""), "eval mode"),
    "loss_tensors_accumulated_with_graphs": ("fit_loop", GRAPH_KEEPING_FIT, "computation graph"),
}


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
    return torch.sum(preds == labels) / len(preds)


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
    return loss.detach(), len(X), metric_result
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
    loss = sum(r[0] * r[1] for r in results).item() / n
    value = sum(r[2] * r[1] for r in results).item() / n if metric is not None else None
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


# ------------------------------------------------------------------------------ grouped mistake bank
# Mistakes in the styles of the course's material (the MLP tutorial's loss_batch / evaluate / fit, d2l's
# layers and initialisation, NumPy counting, nn.Sequential). Each group holds at most one mistake per task
# and is graded once: exactly the group's tasks fail, each with a message naming its own mistake.
# {group: {name: (task, edit, expected words in the task's feedback)}}; an edit is (old, new) in the
# task's solution cell, or the complete new source of that cell.

JOVIAN_ACCURACY = """
def accuracy(outputs, labels):
    _, preds = torch.max(outputs, dim=1)
    return torch.tensor(torch.sum(preds == labels).item() / len(preds))


def loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
    y_hat = net(X)
    loss = loss_fn(y_hat, y)
    if optimizer is not None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    value = metric(y_hat, y) if metric is not None else None
    return loss.item(), len(X), value
"""

JOVIAN_TUPLE_EVALUATE = """
import numpy as np


def evaluate(net, loss_fn, valid_dl, metric=None):
    net.eval()
    with torch.no_grad():
        results = [loss_batch(net, loss_fn, xb, yb, metric=metric) for xb, yb in valid_dl]
        losses, nums, metrics = zip(*results)
        total = np.sum(nums)
        avg_loss = np.sum(np.multiply(losses, nums)) / total
        avg_metric = None
        if metric is not None:
            avg_metric = np.sum(np.multiply(metrics, nums)) / total
    return avg_loss, total, avg_metric
"""

PLAIN_MEAN_EVALUATE = """
import numpy as np


def evaluate(net, loss_fn, valid_dl, metric=None):
    net.eval()
    with torch.no_grad():
        results = [loss_batch(net, loss_fn, xb, yb, metric=metric) for xb, yb in valid_dl]
        losses, nums, metrics = zip(*results)
        total = np.sum(nums)
        avg_loss = np.mean(losses)
        avg_metric = np.sum(np.multiply(metrics, nums)) / total if metric is not None else None
    return {"loss": avg_loss, "metric": avg_metric, "n": total}
"""

ACCURACY_BY_NAME_EVALUATE = """
def evaluate(net, loss_fn, data_iter, metric=None):
    net.eval()
    total_loss, total_acc, total_n = 0.0, 0.0, 0
    with torch.no_grad():
        for X, y in data_iter:
            loss, n, acc = loss_batch(net, loss_fn, X, y, metric=accuracy)
            total_loss += loss * n
            total_acc += acc * n
            total_n += n
    return {"loss": float(total_loss) / total_n, "metric": float(total_acc) / total_n if metric is not None else None,
            "n": total_n}
"""

FIT_ALWAYS_EVALUATES = """
def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_metric": []}
    for epoch in range(1, num_epochs + 1):
        net.train()
        total_loss, total_n = 0.0, 0
        for X, y in train_iter:
            loss, n, _ = loss_batch(net, loss_fn, X, y, optimizer=optimizer)
            total_loss += loss * n
            total_n += n
        result = evaluate(net, loss_fn, valid_iter, metric)
        history["epoch"].append(epoch)
        history["train_loss"].append(float(total_loss) / total_n)
        history["valid_loss"].append(result["loss"])
        history["valid_metric"].append(result["metric"])
        print(f"Epoch [{epoch}/{num_epochs}], loss: {result['loss']:.4f}")
    return history
"""

FIT_WITHOUT_PROGRESS = """
from tqdm import tqdm


def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None):
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_metric": []}
    for epoch in tqdm(range(1, num_epochs + 1)):
        net.train()
        total_loss, total_n = 0.0, 0
        for X, y in train_iter:
            loss, n, _ = loss_batch(net, loss_fn, X, y, optimizer=optimizer)
            total_loss += loss * n
            total_n += n
        history["epoch"].append(epoch)
        history["train_loss"].append(float(total_loss) / total_n)
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            history["valid_loss"].append(result["loss"])
            history["valid_metric"].append(result["metric"])
    return history
"""

FIT_UNWEIGHTED = """
def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_metric": []}
    for epoch in range(1, num_epochs + 1):
        net.train()
        losses = [loss_batch(net, loss_fn, X, y, optimizer=optimizer)[0] for X, y in train_iter]
        history["epoch"].append(epoch)
        history["train_loss"].append(float(sum(losses)) / len(losses))
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            history["valid_loss"].append(result["loss"])
            history["valid_metric"].append(result["metric"])
    return history
"""

SINGLE_PASS_LOADER = """
def get_default_device():
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def to_device(data, device):
    if isinstance(data, (list, tuple)):
        return [to_device(x, device) for x in data]
    return data.to(device, non_blocking=True)


class DeviceDataLoader:
    def __init__(self, dl, device):
        self.dl = dl
        self.device = device
        self.batches = (to_device(b, device) for b in dl)

    def __iter__(self):
        return self.batches

    def __len__(self):
        return len(self.dl)
"""

D2L_DATA_LAYER = """
class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units) * 0.01)
        self.bias = nn.Parameter(torch.zeros(units,))

    def forward(self, X):
        return torch.matmul(X, self.weight.data) + self.bias.data
"""

PLAIN_TENSOR_LAYER = """
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = (torch.randn(in_features, out_features) * 0.01).requires_grad_()
        self.bias = torch.zeros(out_features, requires_grad=True)

    def forward(self, X):
        return X @ self.weight + self.bias
"""

D2L_RANDN_LAYER = """
class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        return torch.matmul(X, self.weight) + self.bias
"""

TWO_LAYERS = """
def make_shared_net(in_features, hidden, out_features):
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_features))
"""

DEEPCOPY_SHARED = """
import copy


def make_shared_net(in_features, hidden, out_features):
    shared = nn.Linear(hidden, hidden)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), shared, nn.ReLU(), copy.deepcopy(shared),
                         nn.ReLU(), nn.Linear(hidden, out_features))
"""

WHOLE_MODEL_SAVED = """
def save_params(net, path):
    torch.save(net, path)


def load_params(make_net, path):
    net = torch.load(path)
    net.eval()
    return net
"""

WEIGHT_LIKE_NN_LINEAR = """
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, X):
        return X @ self.weight.T + self.bias
"""

HARD_CODED_MODEL = """
def save_params(net, path):
    torch.save(net.state_dict(), path)


def load_params(make_net, path):
    net = MnistModel()
    net.load_state_dict(torch.load(path))
    net.eval()
    return net
"""

MODULE_LESS_MLP = """
class MnistModel:
    def __init__(self, in_size=784, hidden_size=32, out_size=10):
        self.linear1 = nn.Linear(in_size, hidden_size)
        self.linear2 = nn.Linear(hidden_size, out_size)

    def __call__(self, X):
        X = X.reshape(X.shape[0], -1)
        return self.linear2(F.relu(self.linear1(X)))


loss_fn = F.cross_entropy
"""

MODULE_LESS_LAYER = """
class MyLinear:
    def __init__(self, in_features, out_features):
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def __call__(self, X):
        return X @ self.weight + self.bias
"""

SHARED_NET_AS_FUNCTION = """
def make_shared_net(in_features, hidden, out_features):
    first, shared, last = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, out_features)

    def net(X):
        return last(F.relu(shared(F.relu(shared(F.relu(first(X)))))))

    return net
"""

CACHED_NET_LOADED = """
_saved = {}


def save_params(net, path):
    torch.save(net.state_dict(), path)
    _saved[path] = net


def load_params(make_net, path):
    net = _saved[path] if path in _saved else make_net()
    net.load_state_dict(torch.load(path))
    net.eval()
    return net
"""

FIT_TRAIN_MODE_ONCE = """
def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_metric": []}
    net.train()
    for epoch in range(1, num_epochs + 1):
        total_loss, total_n = 0.0, 0
        for X, y in train_iter:
            loss, n, _ = loss_batch(net, loss_fn, X, y, optimizer=optimizer)
            total_loss += loss * n
            total_n += n
        history["epoch"].append(epoch)
        history["train_loss"].append(float(total_loss) / total_n)
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            history["valid_loss"].append(result["loss"])
            history["valid_metric"].append(result["metric"])
    return history
"""

GROUPS = {
    "tutorial_styles": {
        "device_as_string": ("device_helpers", (
            'return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")',
            'return "cuda" if torch.cuda.is_available() else "cpu"'), "torch.device"),
        "loss_read_with_item": ("loss_batch", JOVIAN_ACCURACY, "detached 0-dim tensor"),
        "evaluate_returns_a_tuple": ("evaluate_loop", JOVIAN_TUPLE_EVALUATE, "dict"),
        "epochs_counted_from_zero": ("fit_loop", (
            "epochs = range(1, num_epochs + 1)\n    for epoch in (tqdm(epochs, desc=\"epochs\") if progress else epochs):",
            "epochs = range(num_epochs)\n    for epoch in (tqdm(epochs, desc=\"epochs\") if progress else epochs):"),
            "[1, 2, 3]"),
        "nll_loss_on_raw_scores": ("mnist_mlp", ("loss_fn = F.cross_entropy", "loss_fn = F.nll_loss"),
                                   "nll_loss expects log-probabilities"),
        "parameter_data_in_forward": ("custom_layer", D2L_DATA_LAYER, "self.weight.data"),
        "bias_filled_with_0_01": ("init_apply", ("nn.init.zeros_(m.bias)", "m.bias.data.fill_(0.01)"), "zeros"),
        "two_separate_layers": ("shared_layer", TWO_LAYERS, "count once"),
        "loaded_net_left_in_train_mode": ("save_load_params", ("    net.eval()\n    return net", "    return net"),
                                          "training mode"),
    },
    "ignored_arguments": {
        "to_device_not_recursive": ("device_helpers", (
            "return type(data)(to_device(x, device) for x in data)",
            "return type(data)(x.to(device) for x in data)"), "nested list"),
        "loss_fn_ignored": ("loss_batch", ("loss = loss_fn(y_hat, y)", "loss = F.cross_entropy(y_hat, y)"),
                            "loss_fn it is given"),
        "plain_mean_of_batch_losses": ("evaluate_loop", PLAIN_MEAN_EVALUATE, "without weighting"),
        "fit_always_evaluates": ("fit_loop", FIT_ALWAYS_EVALUATES, "valid_iter=None"),
        "sigmoid_hidden_layer": ("mnist_mlp", ("F.relu(self.linear1(X))", "torch.sigmoid(self.linear1(X))"),
                                 "ReLU"),
        "parameters_as_plain_tensors": ("custom_layer", PLAIN_TENSOR_LAYER, "nn.Parameter"),
        "xavier_normal": ("init_apply", ("nn.init.xavier_uniform_(m.weight)", "nn.init.xavier_normal_(m.weight)"),
                          "Xavier-uniform"),
        "shared_layer_copied": ("shared_layer", DEEPCOPY_SHARED, "count once"),
        "whole_model_saved": ("save_load_params", WHOLE_MODEL_SAVED, "state_dict"),
    },
    "counts_and_sizes": {
        "len_of_the_dataset": ("device_helpers", ("return len(self.dl)", "return len(self.dl.dataset)"), "len(dl)"),
        "gradients_never_zeroed": ("loss_batch", ("        optimizer.zero_grad()\n", ""), "parameters"),
        "metric_called_by_name": ("evaluate_loop", ACCURACY_BY_NAME_EVALUATE, "metric"),
        "no_progress_parameter": ("fit_loop", FIT_WITHOUT_PROGRESS, "progress=True"),
        "input_size_hard_coded": ("mnist_mlp", ("X = X.reshape(X.shape[0], -1)", "X = X.view(-1, 784)"),
                                  "MnistModel(196, 20, 4)"),
        "d2l_randn_initialisation": ("custom_layer", D2L_RANDN_LAYER, "N(0, 0.01^2)"),
        "every_module_with_a_weight": ("init_apply", ("if isinstance(m, nn.Linear):",
                                                      'if hasattr(m, "weight"):'), "raised"),
        "model_class_by_name": ("save_load_params", HARD_CODED_MODEL, "load_params"),
    },
    "edges": {
        "single_pass_loader": ("device_helpers", SINGLE_PASS_LOADER, "fresh pass"),
        "metric_after_the_step": ("loss_batch", (
            "value = metric(y_hat, y) if metric is not None else None",
            "value = metric(net(X), y) if metric is not None else None"), "before the step"),
        "unweighted_training_loss": ("fit_loop", FIT_UNWEIGHTED, "plain mean of the batch losses"),
        "weight_stored_like_nn_linear": ("custom_layer", WEIGHT_LIKE_NN_LINEAR, "(in_features, out_features)"),
        "summed_loss": ("mnist_mlp", ("loss_fn = F.cross_entropy",
                                      'def loss_fn(y_hat, y):\n    return F.cross_entropy(y_hat, y, reduction="sum")'),
                        "sum"),
        "bias_zeroed_without_none_check": ("init_apply", ("        if m.bias is not None:\n            nn.init.zeros_(m.bias)",
                                                          "        nn.init.zeros_(m.bias)"), "raised"),
        "state_never_loaded": ("save_load_params", ("    net.load_state_dict(torch.load(path))\n", ""),
                               "predictions"),
        "accuracy_averaged_over_batches": EARLIER["accuracy_averaged_over_batches"],
    },
    # consequences the judge sees in data: module-ness, the mode of a model, changed arguments, a new object
    "consequences": {
        "default_optimizer": ("loss_batch", (
            "    if optimizer is not None:",
            "    optimizer = optimizer or torch.optim.SGD(net.parameters(), lr=0.1)\n    if optimizer is not None:"),
            "must not change the model's parameters"),
        "eval_not_called": ("evaluate_loop", ("    net.eval()\n", "    net.eval\n"), "training mode"),
        "train_mode_set_once": ("fit_loop", FIT_TRAIN_MODE_ONCE, "eval mode for 6 of its 9"),
        "module_less_mlp": ("mnist_mlp", MODULE_LESS_MLP, "should be an nn.Module"),
        "module_less_layer": ("custom_layer", MODULE_LESS_LAYER, "should be an nn.Module"),
        "every_bias_zeroed": ("init_apply", (
            "        if m.bias is not None:\n            nn.init.zeros_(m.bias)",
            "    if getattr(m, \"bias\", None) is not None:\n        nn.init.zeros_(m.bias)"),
            "Initialise nn.Linear modules only"),
        "shared_net_as_function": ("shared_layer", SHARED_NET_AS_FUNCTION, "should return an nn.Module"),
        "saved_net_returned": ("save_load_params", CACHED_NET_LOADED, "same object"),
    },
    # round 3: requirements at their edges (extreme scores, the type of every history value)
    "edges_round3": {
        "cross_entropy_as_log_of_softmax": ("mnist_mlp", (
            "loss_fn = F.cross_entropy",
            "def loss_fn(y_hat, y):\n    return -torch.log(F.softmax(y_hat, dim=1)[torch.arange(len(y)), y]).mean()"),
            "log-sum-exp"),
        "epochs_as_tensors": ("fit_loop", ("epochs = range(1, num_epochs + 1)",
                                           "epochs = torch.arange(1, num_epochs + 1)"), "history['epoch']"),
    },
    "earlier_bank_a": {name: EARLIER[name] for name in (
        "softmax_before_cross_entropy", "batch_to_device_discarded", "loss_kept_with_its_graph",
        "evaluate_without_eval_mode", "fit_never_back_to_train_mode")},
    "earlier_bank_b": {name: EARLIER[name] for name in (
        "layers_created_in_forward", "hard_coded_cuda", "evaluate_with_gradients",
        "loss_tensors_accumulated_with_graphs")},
}


def apply_edits(nb, mistakes):
    """``nb`` with every (task, edit) of ``mistakes`` applied to its task's solution cell."""
    for task, edit, _ in mistakes.values():
        if isinstance(edit, tuple):
            nb = edit_solution(nb, task, *edit)
        else:
            nb = replace_solution(nb, task, edit)
    return nb


def test_grouped_mistakes_touch_each_task_once():
    for group in GROUPS.values():
        tasks = [task for task, _, _ in group.values()]
        assert len(tasks) == len(set(tasks))


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_grouped_mistakes_each_lose_exactly_their_task(reference, group):
    mistakes = GROUPS[group]
    report = grade(apply_edits(reference, mistakes))
    assert report.error is None
    assert report.failed_tasks() == {task for task, _, _ in mistakes.values()}, failures(report)
    for name, (task, _, words) in mistakes.items():
        assert words in report.by_task[task].output, (name, report.by_task[task].output)


# Correct but different, one per task, graded together: full marks.
GROUPED_VARIANTS = {
    "device_helpers": """
def get_default_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def to_device(data, device):
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if isinstance(data, dict):
        return {k: to_device(v, device) for k, v in data.items()}
    return [to_device(x, device) for x in data]


class DeviceDataLoader:
    def __init__(self, dl, device):
        self.dl, self.device = dl, device

    def __iter__(self):
        return (to_device(b, self.device) for b in self.dl)

    def __len__(self):
        return len(self.dl)
""",
    "loss_batch": """
def accuracy(y_hat, y):
    return torch.eq(y_hat.argmax(dim=1), y).sum() / y.numel()


def loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
    y_hat = net(X)
    loss = loss_fn(y_hat, y)
    if optimizer is not None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return loss.data, y.shape[0], None if metric is None else metric(y_hat, y)
""",
    "evaluate_loop": """
import numpy as np


def evaluate(net, loss_fn, valid_dl, metric=None):
    net.eval()
    with torch.no_grad():
        results = [loss_batch(net, loss_fn, xb, yb, metric=metric) for xb, yb in valid_dl]
        losses, nums, metrics = zip(*results)
        total = np.sum(nums)
        avg_loss = np.sum(np.multiply(losses, nums)) / total
        avg_metric = None
        if metric is not None:
            avg_metric = np.sum(np.multiply(metrics, nums)) / total
    return {"loss": avg_loss, "metric": avg_metric, "n": total}
""",
    "fit_loop": """
from tqdm.auto import tqdm


def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    history = {"epoch": [], "train_loss": []}
    for epoch in range(num_epochs):
        net.train()
        batches = tqdm(train_iter, desc=f"epoch {epoch + 1}", disable=not progress)
        results = [loss_batch(net, loss_fn, X, y, optimizer=optimizer) for X, y in batches]
        losses, nums, _ = zip(*results)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(float(sum(l * n for l, n in zip(losses, nums))) / sum(nums))
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric)
            history.setdefault("valid_loss", []).append(result["loss"])
            history.setdefault("valid_metric", []).append(result["metric"])
            print(f"Epoch [{epoch + 1}/{num_epochs}], val_loss: {result['loss']:.4f}")
    return history
""",
    "mnist_mlp": """
def MnistModel(in_size=784, hidden_size=32, out_size=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, out_size), nn.LogSoftmax(dim=1))


loss_fn = nn.NLLLoss()
""",
    "custom_layer": """
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        nn.init.normal_(self.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.bias)

    def forward(self, X):
        return torch.matmul(X, self.weight) + self.bias
""",
    "init_apply": """
def init_weights(m):
    if type(m) == nn.Linear:
        torch.nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            m.bias.data.fill_(0)
""",
    "shared_layer": """
def make_shared_net(in_features, hidden, out_features):
    first, second = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
    second.weight, second.bias = first.weight, first.bias      # tied: the same Parameters
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), first, nn.ReLU(), second, nn.ReLU(),
                         nn.Linear(hidden, out_features))
""",
    "save_load_params": """
def save_params(net, path):
    state = net.state_dict()
    print(f"saving {len(state)} tensors to {path}")
    torch.save(state, path)


def load_params(make_net, path):
    clone = make_net()
    clone.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return clone.train(False)
""",
}


EARLIER_VARIANTS = {task: source for name, (task, source) in VARIANTS.items() if name != "log_softmax_with_nll_loss"}


@pytest.mark.parametrize("variants", ["GROUPED_VARIANTS", "EARLIER_VARIANTS"])
def test_grouped_correct_variants_get_full_marks(reference, variants):
    nb = reference
    for task, source in globals()[variants].items():
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.error is None
    assert report.failed_tasks() == set(), failures(report)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_code_trains_unchanged_on_cuda(reference):
    import torch
    from autograder.judge.notebook import program_cells
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


# A count is any integral number: the tutorial's evaluate sums batch sizes with np.sum (a NumPy integer).
# Judged in this process with evaluate_loop's graders only (no sandbox), so these run fast.
COUNTS = {"a Python int": ("total_n", True), "a NumPy integer": ("np.int64(total_n)", True),
          "a 0-d integer tensor": ("torch.tensor(total_n)", True), "a float": ("float(total_n)", False)}


@pytest.mark.parametrize("kind", sorted(COUNTS))
def test_evaluate_count_may_be_any_integral_number(reference, kind):
    expression, accepted = COUNTS[kind]
    nb = edit_solution(reference, "evaluate_loop", '"n": total_n}', f'"n": {expression}}}')
    nb = edit_solution(nb, "evaluate_loop", "def evaluate(", "import numpy as np\n\n\ndef evaluate(")
    messages = judge_in_process(nb, A, "evaluate_loop")
    if accepted:
        assert messages == []
    else:
        assert messages and "it is 23" in messages[0], messages
    assert not any("int64" in m or "'float'" in m for m in messages), messages


# More mistakes, each judged in this process with its own task's graders only (fast; the grouped gradings
# above show that an edit confined to one task's cell costs no other task).
SINGLE_TASK_MISTAKES = {
    "path_ignored": ("save_load_params", """
def save_params(net, path):
    torch.save(net.state_dict(), "mlp.params")


def load_params(make_net, path):
    net = make_net()
    net.load_state_dict(torch.load("mlp.params"))
    net.eval()
    return net
""", "no file at path"),
    "named_parameters_only": ("save_load_params", """
def save_params(net, path):
    torch.save({name: p.detach() for name, p in net.named_parameters()}, path)


def load_params(make_net, path):
    net = make_net()
    net.load_state_dict(torch.load(path), strict=False)
    net.eval()
    return net
""", "state_dict"),
    "shared_layer_without_relu_between": ("shared_layer", """
def make_shared_net(in_features, hidden, out_features):
    shared = nn.Linear(hidden, hidden)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), shared, shared, nn.ReLU(),
                         nn.Linear(hidden, out_features))
""", "the output of"),
    "init_normal_std_0_01": ("init_apply", """
def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, mean=0, std=0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
""", "Xavier-uniform"),
}


# The device-side loop: every number read back to Python at every batch, or never (types of what is returned).
SINGLE_TASK_MISTAKES.update({
    "loss_read_with_item": ("loss_batch", ("return loss.detach(), len(X), value", "return loss.item(), len(X), value"),
                            "detached 0-dim tensor"),
    "accuracy_read_with_item": ("loss_batch", ("return (y_hat.argmax(dim=1) == y).float().mean()",
                                               "return (y_hat.argmax(dim=1) == y).float().mean().item()"),
                                "return the 0-dim tensor itself"),
    "evaluate_returns_the_sums_as_tensors": ("evaluate_loop", ('"loss": float(total_loss) / total_n',
                                                               '"loss": total_loss / total_n'), "read the sum once"),
    "fit_stores_tensors": ("fit_loop", ('history["train_loss"].append(float(total_loss) / total_n)',
                                        'history["train_loss"].append(total_loss / total_n)'),
                           "read each epoch's sum once"),
})
SINGLE_TASK_MISTAKES["detached_loss"] = ("mnist_mlp", (
    "loss_fn = F.cross_entropy",
    "def loss_fn(y_hat, y):\n    return F.cross_entropy(y_hat, y).detach().requires_grad_()"), "detached")
SINGLE_TASK_MISTAKES.update({name: EARLIER[name] for name in ("flatten_without_start_dim", "no_relu", "always_cuda")})
# Round 3: the loss and the model at their edges (a batch of one image, scores far apart).
SINGLE_TASK_MISTAKES.update({
    "log_of_softmax_in_forward": ("mnist_mlp", (
        "return self.linear2(F.relu(self.linear1(X)))",
        "return torch.log(F.softmax(self.linear2(F.relu(self.linear1(X))), dim=1))"),
        "underflows"),
    "labels_squeezed_in_loss": ("mnist_mlp", (
        "loss_fn = F.cross_entropy", "def loss_fn(y_hat, y):\n    return F.cross_entropy(y_hat, y.squeeze())"),
        "batch of one image"),
    "scores_squeezed_in_loss": ("mnist_mlp", (
        "loss_fn = F.cross_entropy", "def loss_fn(y_hat, y):\n    return F.cross_entropy(y_hat.squeeze(), y)"),
        "batch of one image"),
})


@pytest.mark.parametrize("name", sorted(SINGLE_TASK_MISTAKES))
def test_single_task_mistake_fails_its_task(reference, name):
    task, edit, words = SINGLE_TASK_MISTAKES[name]
    nb = edit_solution(reference, task, *edit) if isinstance(edit, tuple) else replace_solution(reference, task, edit)
    messages = judge_in_process(nb, A, task)
    assert messages and any(words in m for m in messages), messages


def test_log_softmax_with_nll_loss_is_accepted(reference):
    task, source = VARIANTS["log_softmax_with_nll_loss"]
    assert judge_in_process(replace_solution(reference, task, source), A, task) == []


# Round 3: correct answers close to the new edge checks (a hand-written stable cross-entropy, labels reshaped
# rather than squeezed, epochs from trange).
ROUND3_VARIANTS = {
    "logsumexp_cross_entropy": ("mnist_mlp", (
        "loss_fn = F.cross_entropy",
        "def loss_fn(y_hat, y):\n"
        "    return (torch.logsumexp(y_hat, dim=1) - y_hat.gather(1, y.view(-1, 1)).squeeze(1)).mean()")),
    "log_softmax_sequential_nll_on_reshaped_labels": ("mnist_mlp", """
def MnistModel(in_size=784, hidden_size=32, out_size=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, out_size), nn.LogSoftmax(dim=1))


def loss_fn(y_hat, y):
    return F.nll_loss(y_hat, y.reshape(-1))
"""),
    "fit_with_trange": ("fit_loop", """
from tqdm.auto import trange


def fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=None, metric=None, progress=False):
    history = {}
    for epoch in trange(1, num_epochs + 1, disable=not progress):
        net.train()
        sums = [0.0, 0]
        for X, y in train_iter:
            loss, n, _ = loss_batch(net, loss_fn, X, y, optimizer)
            sums[0] += loss * n
            sums[1] += n
        history.setdefault("epoch", []).append(epoch)
        history.setdefault("train_loss", []).append(float(sums[0]) / sums[1])
        if valid_iter is not None:
            result = evaluate(net, loss_fn, valid_iter, metric=metric)
            history.setdefault("valid_loss", []).append(result["loss"])
            history.setdefault("valid_metric", []).append(result["metric"])
    return history
"""),
}


@pytest.mark.parametrize("name", sorted(ROUND3_VARIANTS))
def test_round3_variant_is_accepted(reference, name):
    task, edit = ROUND3_VARIANTS[name]
    nb = edit_solution(reference, task, *edit) if isinstance(edit, tuple) else replace_solution(reference, task, edit)
    assert judge_in_process(nb, A, task) == []


# The course library's finished versions (course.devices, course.training, course.mlp) pass the graders: their
# source is put into the task's cell (the library modules themselves are this lesson's answers, which a
# notebook may not import while it is graded).
LIBRARY = {
    "device_helpers": ("devices", ["get_default_device", "to_device", "DeviceDataLoader"]),
    "loss_batch": ("training", ["accuracy", "loss_batch"]),
    "evaluate_loop": ("training", ["evaluate"]),
    "fit_loop": ("training", ["fit"]),
    "mnist_mlp": ("mlp", ["MnistModel"]),
    "custom_layer": ("mlp", ["MyLinear"]),
    "init_apply": ("mlp", ["init_weights"]),
    "shared_layer": ("mlp", ["make_shared_net"]),
    "save_load_params": ("mlp", ["save_params", "load_params"]),
}


@pytest.mark.parametrize("task", sorted(LIBRARY))
def test_course_library_passes_the_graders(reference, task):
    import importlib
    import inspect

    module_name, names = LIBRARY[task]
    module = importlib.import_module(f"course.{module_name}")
    source = "from tqdm.auto import tqdm\n\n\n" + "\n\n".join(inspect.getsource(getattr(module, n)) for n in names)
    if task == "mnist_mlp":
        source += f"\n\nloss_fn = F.{module.loss_fn.__name__}\n"
    assert judge_in_process(replace_solution(reference, task, source), A, task) == []
