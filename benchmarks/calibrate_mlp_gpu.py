"""Calibrate the accuracy grader of 06-mlp-gpu: seeded runs of the reference and of wrong variants.

Runs the grader's own training probe in this process against the source notebook's code (or a variant of
it), on the data the grader uses: the MNIST test split (8,000 / 2,000, seed 0), held-out images normalised
and disguised with a fresh secret per run. Run ``s`` uses grading seed ``s`` (seeds 0 .. N-1) as the grader
does under COURSE_GRADING_SEED. Prints min / median / max of held-out accuracy and training loss.

Usage: python benchmarks/calibrate_mlp_gpu.py [--seeds 20] [--variants NAME ...]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lesson_graders import lesson  # noqa: E402

g = lesson("mlp_gpu")
from autograder.judge.notebook import program_cells, read_notebook  # noqa: E402
from autograder.sandbox.inside.worker import StudentNamespace  # noqa: E402
from course.data import mnist_test_split_tensors  # noqa: E402

SOURCE = ROOT / "source/06-mlp-gpu/mlp_gpu.ipynb"

# name: code run after the notebook's own cells
VARIANTS = {
    "reference": "",
    "sigmoid hidden layer": '''
class MnistModel(MnistModel):
    def forward(self, X):
        return self.linear2(torch.sigmoid(self.linear1(X.reshape(X.shape[0], -1))))
''',
    "no hidden activation": '''
class MnistModel(MnistModel):
    def forward(self, X):
        return self.linear2(self.linear1(X.reshape(X.shape[0], -1)))
''',
    "softmax before cross_entropy": '''
class MnistModel(MnistModel):
    def forward(self, X):
        return F.softmax(super().forward(X), dim=1)
''',
}


def namespace(extra=""):
    """The source notebook's program cells (plus ``extra``) executed in a fresh namespace."""
    ns = {"__name__": "__main__"}
    for _, source in program_cells(read_notebook(SOURCE)):
        exec(compile(source, "<cell>", "exec"), ns)
    if extra:
        exec(compile(extra, "<variant>", "exec"), ns)
    return StudentNamespace(ns)


def summary(name, values):
    return f"{name} min {min(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)                      # as the grader's probe
    X_train, y_train, X_test, y_test = mnist_test_split_tensors(2000, seed=0)
    cfg = g.MLP_TRAINING
    for name in args.variants:
        ns = namespace(VARIANTS[name])
        accs, losses, times = [], [], []
        for seed in range(args.seeds):
            heldout = g.heldout_inputs(X_test, secret=987654321 + seed)
            start = time.perf_counter()
            out = g.probe_mlp_training(ns, X_train, y_train, heldout, cfg["hidden"], cfg["lr"], cfg["num_epochs"],
                                       cfg["batch_size"], seed, g.MNIST_MEAN, g.MNIST_STD)
            times.append(time.perf_counter() - start)
            accs.append((out["pred"] == y_test).double().mean().item())
            losses.append(out["train_loss"])
        print(f"{name} ({args.seeds} seeds): {summary('accuracy', accs)} | {summary('loss', losses)} | "
              f"median {statistics.median(times):.2f} s per run", flush=True)


if __name__ == "__main__":
    main()
