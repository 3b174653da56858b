"""Calibrate the training-outcome thresholds of 05-softmax-regression and time the reference's grading.

Runs the graders' own training probes (``manual_outcome``, ``fast_outcome``) against the reference
notebook's code for many grading seeds (as COURSE_GRADING_SEED does: the training points, the initial
W and the training seed follow the seed; the held-out set stays fixed), prints min / median / max of
held-out accuracy and loss, checks that every seed passes the thresholds (the flakiness check),
runs the wrong variants that the thresholds must reject, runs the method checks (replayed loops) on the
reference and on wrong methods that they must reject, and finally times the CLI grading of the
reference notebook (median of 5).

    .venv/bin/python benchmarks/calibrate_softmax_regression.py [--seeds 30] [--timing-runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from lesson_graders import lesson, under_seeds  # noqa: E402

graders = lesson("softmax_regression")
from autograder.judge.notebook import program_cells, read_notebook  # noqa: E402
from autograder.sandbox.student import InProcessStudent  # noqa: E402

NOTEBOOK = os.path.join(ROOT, "source", "05-softmax-regression", "softmax_regression.ipynb")

# Wrong variants the thresholds must reject: (name, pipeline, old text, new text).
WRONG = [
    ("softmax before nn.CrossEntropyLoss", "fast", "nn.Linear(num_inputs, num_outputs))",
     "nn.Linear(num_inputs, num_outputs), nn.Softmax(dim=1))"),
    ("nn.NLLLoss on raw logits", "fast", "loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.NLLLoss()"),
    ("sgd step divided by the batch size twice", "manual", "sgd([W, b], lr, 1)", "sgd([W, b], lr, len(X_batch))"),
    ("labels of shape (n, 1) in the manual loop", "manual",
     "cross_entropy(softmax_regression(X_batch, W, b), y_batch)",
     "cross_entropy(softmax_regression(X_batch, W, b), y_batch.reshape(-1, 1))"),
    ("gradients never zeroed", "manual", "sgd([W, b], lr, 1)",
     "with torch.no_grad():\n                W -= lr * W.grad\n                b -= lr * b.grad"),
]


def reference_namespace(edit=None):
    """Run the notebook's graded program cells (set-up and solutions) in a fresh namespace."""
    code = "\n\n".join(source for _, source in program_cells(read_notebook(NOTEBOOK)))
    if edit is not None:
        old, new = edit
        assert old in code, old
        code = code.replace(old, new, 1)
    namespace = {"__name__": "__main__"}
    exec(compile(code, "<reference>", "exec"), namespace)
    return namespace


def summary(values):
    return f"min {min(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}"


def outcomes(student, pipeline, seeds):
    run = graders.manual_outcome if pipeline == "manual" else graders.fast_outcome
    accs, losses = [], []
    for seed in seeds:
        try:
            (acc, loss), _ = run(student, seed=seed)
        except AssertionError as exc:  # a GradingFailure: the variant crashed or returned nonsense
            return None, str(exc)
        accs.append(acc)
        losses.append(loss)
    return (accs, losses), ""


# Wrong methods the method checks must reject (name, pipeline, old text, new text); thresholds miss some.
WRONG_METHODS = [
    ("epoch loss as a plain mean of batch means", "manual",
     "total += loss.item() * len(X_batch)\n            count += len(X_batch)",
     "total += loss.item()\n            count += 1"),
    ("sgd step divided by the batch size twice", "manual", "sgd([W, b], lr, 1)", "sgd([W, b], lr, len(X_batch))"),
    ("SGD with momentum 0.9", "fast", "torch.optim.SGD(net.parameters(), lr=lr)",
     "torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)"),
    ("softmax before nn.CrossEntropyLoss", "fast", "nn.Linear(num_inputs, num_outputs))",
     "nn.Linear(num_inputs, num_outputs), nn.Softmax(dim=1))"),
]


def method_check_failures(student, pipeline, seeds):
    """Seeds under which the graders' method check of ``pipeline`` rejects the student's code."""
    check = (graders.test_train_manual_follows_the_method if pipeline == "manual"
             else graders.test_train_fast_follows_the_method)
    rejected = []
    for seed in under_seeds(seeds):
        try:
            check(student)
        except AssertionError:
            rejected.append(seed)
    return rejected


def passes(acc, loss):
    return acc >= graders.MIN_ACCURACY and loss <= graders.MAX_LOSS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--timing-runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    print(f"thresholds: accuracy >= {graders.MIN_ACCURACY}, loss <= {graders.MAX_LOSS}; {args.seeds} seeds\n")

    student = InProcessStudent(reference_namespace())
    failures = 0
    for pipeline in ("manual", "fast"):
        (accs, losses), _ = outcomes(student, pipeline, seeds)
        bad = [s for s, a, l in zip(seeds, accs, losses) if not passes(a, l)]
        failures += len(bad)
        print(f"reference {pipeline:6s} accuracy {summary(accs)}")
        print(f"reference {pipeline:6s} loss     {summary(losses)}")
        print(f"reference {pipeline:6s} seeds failing the thresholds: {bad or 'none'}")
    print()
    for name, pipeline, old, new in WRONG:
        result, message = outcomes(InProcessStudent(reference_namespace((old, new))), pipeline, seeds)
        if result is None:
            print(f"wrong: {name:45s} fails to run: {message[:100]}")
            continue
        accs, losses = result
        rejected = sum(not passes(a, l) for a, l in zip(accs, losses))
        print(f"wrong: {name:45s} accuracy {summary(accs)} | loss {summary(losses)} | "
              f"rejected {rejected}/{len(accs)}")

    print()
    reference = InProcessStudent(reference_namespace())
    for pipeline in ("manual", "fast"):
        bad = method_check_failures(reference, pipeline, seeds)
        failures += len(bad)
        print(f"method check, reference {pipeline:6s}: rejected under seeds {bad or 'none'}")
    for name, pipeline, old, new in WRONG_METHODS:
        bad = method_check_failures(InProcessStudent(reference_namespace((old, new))), pipeline, seeds)
        print(f"method check, wrong: {name:45s} rejected {len(bad)}/{len(seeds)}")

    if args.timing_runs:
        times = []
        for _ in range(args.timing_runs):
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "autograder", "grade", NOTEBOOK, "--results", os.devnull],
                           cwd=ROOT, check=True, capture_output=True)
            times.append(time.monotonic() - start)
        print(f"\ngrading the reference: median {statistics.median(times):.1f} s over {len(times)} runs "
              f"({', '.join(f'{t:.1f}' for t in times)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
