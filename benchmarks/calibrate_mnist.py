"""Calibrate the accuracy graders of 06-mlp-gpu and 07-mnist-cnn: seeded runs of the reference and variants.

Runs the graders' own training probes in this process against the source notebook's code (or a variant
of it) on the same data the graders use (for the CNN: held-out images disguised as in grading, with a
different secret for every seed), and prints min / median / max of the held-out accuracy and of the
training loss. Seed s stands for COURSE_GRADING_SEED=s. Usage:

    python benchmarks/calibrate_mnist.py [--lesson mlp|cnn|both] [--seeds 20] [--variants]
"""
import argparse
import functools
import warnings
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.judge.notebook import program_cells, read_notebook  # noqa: E402
from autograder.sandbox.inside.worker import StudentNamespace  # noqa: E402
from course.data import mnist_test_split_tensors  # noqa: E402

mnist_split = functools.lru_cache(maxsize=1)(lambda: mnist_test_split_tensors(2000, seed=0))  # as the graders

N_TRAIN = None
ONLY = None
NO_DISGUISE = False
VERBOSE = False
SECRET_BASE = 7_000_000   # CNN: grading seed s disguises the held-out images with secret SECRET_BASE + s
SOURCES = {"mlp": ROOT / "source/06-mlp-gpu/mlp_gpu.ipynb", "cnn": ROOT / "source/07-mnist-cnn/mnist_cnn.ipynb"}

# Variants: (lesson, name, code appended after the notebook's own cells)
VARIANTS = {
    "mlp": {
        "softmax before cross_entropy": '''
class MnistModel(MnistModel):
    def forward(self, X):
        return F.softmax(super().forward(X), dim=1)
''',
        "log_softmax + nll_loss": '''
class MnistModel(MnistModel):
    def forward(self, X):
        return F.log_softmax(super().forward(X), dim=1)
loss_fn = F.nll_loss
''',
        "nn.Sequential": '''
def MnistModel(in_size=784, hidden_size=32, out_size=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, out_size))
''',
    },
    "cnn": {
        "Dropout2d as published, Adadelta lr 0.5": '''
class Net(Net):
    def __init__(self):
        super().__init__()
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
''',
        "Adadelta lr 0.05 (a tenth of the lesson's)": '''
def make_optimizer(net):
    return torch.optim.Adadelta(net.parameters(), lr=0.05)
''',
        "Adam lr 1e-3": '''
def make_optimizer(net):
    return torch.optim.Adam(net.parameters(), lr=1e-3)
''',
        "Dropout2d on the features + Adam lr 1e-3": '''
class Net(Net):
    def __init__(self):
        super().__init__()
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
def make_optimizer(net):
    return torch.optim.Adam(net.parameters(), lr=1e-3)
''',
        "dropout without training flag": '''
class Net(Net):
    def forward(self, X):
        X = F.relu(self.conv1(X))
        X = F.relu(self.conv2(X))
        X = F.max_pool2d(X, 2)
        X = F.dropout(X, 0.25)
        X = torch.flatten(X, 1)
        X = F.relu(self.fc1(X))
        X = F.dropout(X, 0.5)
        return F.log_softmax(self.fc2(X), dim=1)
''',
    },
}


def namespace(lesson, extra=""):
    """The source notebook's program cells (plus ``extra``) executed in a fresh namespace."""
    ns = {"__name__": "__main__"}
    for _, source in program_cells(read_notebook(SOURCES[lesson])):
        exec(compile(source, "<cell>", "exec"), ns)
    if extra:
        exec(compile(extra, "<variant>", "exec"), ns)
    return StudentNamespace(ns)


def run(lesson, ns, seed):
    """One graded training run; returns (held-out accuracy, training loss, seconds)."""
    if lesson == "mlp":
        from lesson_graders import lesson
        g = lesson("mlp_gpu")
        X_train, y_train, X_test, y_test = mnist_split()
        cfg = dict(g.MLP_TRAINING, seed=seed)
        X_heldout = (g.normalize(X_test) if NO_DISGUISE
                     else g.heldout_inputs(X_test, secret=SECRET_BASE + seed))   # as for the CNN below
        start = time.perf_counter()
        out = g.probe_mlp_training(ns, X_train, y_train, X_heldout, cfg["hidden"], cfg["lr"], cfg["num_epochs"],
                                   cfg["batch_size"], cfg["seed"], g.MNIST_MEAN, g.MNIST_STD)
    else:
        from lesson_graders import lesson
        g = lesson("mnist_cnn")
        X_train, y_train, X_test, y_test = mnist_split()
        cfg = dict(g.CNN_TRAINING, seed=seed)
        if N_TRAIN:
            cfg["n_train"] = N_TRAIN
        X_heldout = (g.normalize(X_test) if NO_DISGUISE
                     else g.heldout_inputs(X_test, secret=SECRET_BASE + seed))   # a different secret per run
        start = time.perf_counter()
        out = g.probe_cnn_training(ns, X_train[:cfg["n_train"]], y_train[:cfg["n_train"]], X_heldout,
                                   cfg["batch_size"], cfg["seed"], g.MNIST_MEAN, g.MNIST_STD)
    seconds = time.perf_counter() - start
    return (out["pred"] == y_test).double().mean().item(), out["train_loss"], seconds


def summary(name, values):
    return f"{name} min {min(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}"


def calibrate(lesson, seeds, variants):
    runs = [("reference", "")] + (list(VARIANTS[lesson].items()) if variants else [])
    if ONLY:
        runs = [(name, extra) for name, extra in runs if name == ONLY]
    for name, extra in runs:
        ns = namespace(lesson, extra)
        accs, losses, times = [], [], []
        for seed in range(seeds):
            acc, loss, seconds = run(lesson, ns, seed)
            if VERBOSE:
                print(f"  [{lesson}] {name} seed {seed}: accuracy {acc:.4f} loss {loss:.3f} ({seconds:.1f} s)",
                      flush=True)
            accs.append(acc)
            losses.append(loss)
            times.append(seconds)
        print(f"[{lesson}] {name} ({seeds} seeds): {summary('accuracy', accs)} | {summary('loss', losses)} | "
              f"median {statistics.median(times):.2f} s per run", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", choices=["mlp", "cnn", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--variants", action="store_true", help="also run the variants")
    parser.add_argument("--only", default=None, help="run only the variant with this name")
    parser.add_argument("--n-train", type=int, default=None, help="CNN: training images (default: the grader's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the graders' probes train with 1)")
    parser.add_argument("--no-disguise", action="store_true", help="CNN: held-out images as published")
    parser.add_argument("--verbose", action="store_true", help="print every run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*dropout2d.*")
    global N_TRAIN, ONLY, NO_DISGUISE, VERBOSE
    N_TRAIN, ONLY, NO_DISGUISE, VERBOSE = args.n_train, args.only, args.no_disguise, args.verbose
    for lesson in (["mlp", "cnn"] if args.lesson == "both" else [args.lesson]):
        calibrate(lesson, args.seeds, args.variants)


if __name__ == "__main__":
    main()
