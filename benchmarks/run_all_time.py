"""What Run All costs a student: each lesson's reference notebook executed top to bottom, every cell timed.

    python benchmarks/run_all_time.py                     # every lesson, full size
    python benchmarks/run_all_time.py 06-mlp-gpu --runs 3

Prints per lesson the total seconds (median of the runs) and, for each demo cell (tag skip-when-grading,
which Validate and grading leave out), its median seconds: the figure each demo's text states.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autograder.judge.tasks import available_assignments, lesson_name  # noqa: E402


def timed_run(assignment):
    """({cell index: seconds}, total seconds, {cell index: first line}) of one Run All of the reference."""
    nb = nbformat.read(os.path.join(ROOT, "source", assignment, lesson_name(assignment) + ".ipynb"), as_version=4)
    folder = tempfile.mkdtemp(prefix="run-all-")            # files the notebook writes go there
    seconds = {}
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": folder}})
    started = time.monotonic()
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                begin = time.monotonic()
                client.execute_cell(cell, index)
                seconds[index] = time.monotonic() - begin
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    demos = {i: c.source.splitlines()[0] if c.source else "" for i, c in enumerate(nb.cells)
             if "skip-when-grading" in c.metadata.get("tags", [])}
    return seconds, time.monotonic() - started, demos


def main():
    os.environ.update(MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every lesson")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for assignment in args.assignments or available_assignments():
        runs = [timed_run(assignment) for _ in range(args.runs)]
        totals = [total for _, total, _ in runs]
        demos = runs[0][2]
        print(f"{assignment}: Run All {statistics.median(totals):.1f} s (median of {args.runs}); "
              f"demos {sum(statistics.median(r[0].get(i, 0.0) for r in runs) for i in demos):.1f} s")
        for index, first in demos.items():
            print(f"  cell {index:>3}  {statistics.median(r[0].get(index, 0.0) for r in runs):7.1f} s  {first[:70]}")


if __name__ == "__main__":
    main()
