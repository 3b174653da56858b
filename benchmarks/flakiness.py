"""Flakiness check and grading time of every lesson: graders follow COURSE_GRADING_SEED.

Covers all seven assignments (01-datasets .. 07-mnist-cnn) by default, or the ones named.

1. Grades each reference notebook under COURSE_GRADING_SEED = 0 .. N-1 (the graders' data change with
   it; one sandboxed student per assignment serves all seeds) and prints every task that lost a point
   and the points lost: the reference must never lose one.
2. Grades each reference notebook from scratch (a fresh sandbox, as the CLI does) several times and
   prints the median grading time (target: at most 15 s each on 2 CPU cores).

Usage: python benchmarks/flakiness.py [ASSIGNMENT ...] [--seeds 20] [--timing-runs 5]
e.g.   python benchmarks/flakiness.py 03-linear-regression 05-softmax-regression --timing-runs 0
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autograder.judge.engine import grade_notebook  # noqa: E402
from autograder.sandbox.library import ASSIGNMENTS  # noqa: E402
from autograder.judge.notebook import program_cells  # noqa: E402
from autograder.sandbox.student import SandboxStudent  # noqa: E402
from tests.notebooks import source_notebook  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lesson_graders import under_seeds  # noqa: E402


def flakiness(assignment, seeds):
    """Seeds under which the reference lost points: {seed: {task: feedback}}."""
    nb = source_notebook(assignment)
    student = SandboxStudent(program_cells(nb))
    student.start()
    lost = {}
    try:
        for seed in under_seeds(seeds):
            report = grade_notebook(nb, assignment=assignment, student=student)
            failed = report.failed_tasks()
            if failed or report.error:
                lost[seed] = {t: f"lost {report.by_task[t].max_score - report.by_task[t].score:g} point(s): "
                                 f"{report.by_task[t].output}" for t in failed} or report.error
    finally:
        student.close()
    return lost


def grading_times(assignment, runs):
    """Wall-clock seconds of ``runs`` complete gradings of the reference, each in a fresh sandbox."""
    nb = source_notebook(assignment)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        report = grade_notebook(nb, assignment=assignment)
        times.append(time.perf_counter() - start)
        assert report.failed_tasks() == set(), report.failed_tasks()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help=f"default: all of {', '.join(ASSIGNMENTS)}")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--timing-runs", type=int, default=5)
    args = parser.parse_args()
    assignments = args.assignments or ASSIGNMENTS
    unknown = [a for a in assignments if a not in ASSIGNMENTS]
    if unknown:
        parser.error(f"unknown assignment {', '.join(unknown)} (choose from {', '.join(ASSIGNMENTS)})")
    ok = True
    for assignment in assignments:
        start = time.perf_counter()
        lost = flakiness(assignment, range(args.seeds))
        print(f"{assignment}: reference graded under {args.seeds} seeds ({time.perf_counter() - start:.0f} s): "
              f"{'never lost a point' if not lost else f'LOST POINTS under {len(lost)} seed(s)'}", flush=True)
        for seed, tasks in lost.items():
            print(f"  seed {seed}: {tasks}")
        ok = ok and not lost
    for assignment in assignments:
        if args.timing_runs:
            times = grading_times(assignment, args.timing_runs)
            print(f"{assignment}: grading time of the reference, median of {len(times)}: "
                  f"{statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
