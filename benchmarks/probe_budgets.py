"""Measure how long each probe runs on the reference solution and write each lesson's ``budgets.toml``.

A probe may then run ``FACTOR`` times its slowest measured time, at least ``MINIMUM`` seconds and at most the
default ``Limits.call_timeout`` (autograder.judge.budgets): an endless loop in one function costs a class
seconds, not a minute per check, and a correct but slower solution keeps a wide margin.

    python benchmarks/probe_budgets.py                 # every lesson, 3 gradings each, writes the files
    python benchmarks/probe_budgets.py 03-linear-regression --runs 5 --dry-run

Prints, per probe: its median seconds over the runs, the slowest run, and the seconds it is allowed.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autograder.judge.budgets import BUDGETS_FILE, allowed_seconds, write_budgets  # noqa: E402
from autograder.judge.engine import grade_notebook, load_submission  # noqa: E402
from autograder.judge.notebook import program_cells  # noqa: E402
from autograder.judge.tasks import available_assignments, load_assignment, lesson_name  # noqa: E402
from autograder.sandbox.student import Limits, SandboxStudent  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timings_of_one_grading(assignment):
    """[(probe key, seconds)] of one grading of the reference notebook, and its total points."""
    path = os.path.join(ROOT, "source", assignment, lesson_name(assignment) + ".ipynb")
    nb = load_submission(path)
    student = SandboxStudent(program_cells(nb), Limits(), assignment=assignment)
    student.open_box()
    student.start()
    try:
        student.start_budget()
        report = grade_notebook(nb, assignment=assignment, student=student)
    finally:
        student.close()
    assert report.error is None and not report.failed_tasks(), (assignment, report.error, report.failed_tasks())
    return list(student.timings), report.score


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every lesson")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print only; write no budgets.toml")
    args = parser.parse_args()
    for assignment in args.assignments or available_assignments():
        seen = {}
        started = time.monotonic()
        for _ in range(args.runs):
            timings, _ = timings_of_one_grading(assignment)
            for key, seconds in timings:
                seen.setdefault(key, []).append(seconds)
        print(f"{assignment}: {args.runs} gradings of the reference in {time.monotonic() - started:.0f} s")
        for key in sorted(seen):
            print(f"  {key:<40} median {statistics.median(seen[key]):7.3f} s  slowest {max(seen[key]):7.3f} s"
                  f"  allowed {allowed_seconds(max(seen[key])):5.1f} s")
        if not args.dry_run:
            path = write_budgets(load_assignment(assignment), {k: max(v) for k, v in seen.items()}, args.runs)
            print(f"  written: {os.path.relpath(path, ROOT)} ({BUDGETS_FILE})")


if __name__ == "__main__":
    main()
