"""CPU fairness: how much a starving submission slows an honest classmate graded beside it.

    .venv/bin/python benchmarks/cpu_fairness.py              # 3 runs each, 01-datasets
    .venv/bin/python benchmarks/cpu_fairness.py --runs 5 --busy 24

Alternates, under the same load: the honest reference graded alone, then graded while another judge
process grades a submission whose notebook keeps ``--busy`` processes spinning (each under the per-check
limit). Prints the medians of the honest grading's wall time, and their ratio: with each box capped at
its CPU share (``Limits.cpus``, cgroup cpu quota) the ratio stays near what a second honest grading
beside it costs on this machine, whatever ``--busy`` is.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.notebooks import append_cell, notebook_path, release_notebook  # noqa: E402

STARVE = """
import os, time
for _ in range({busy}):
    if os.fork() == 0:
        end = time.monotonic() + 50
        while time.monotonic() < end:
            pass
        os._exit(0)
"""


def grade(path, results, wait=True):
    cmd = [sys.executable, "-m", "autograder", "grade", path, "--results", results]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=24)
    parser.add_argument("--assignment", default="01-datasets")
    args = parser.parse_args()
    honest = notebook_path(args.assignment, "source")
    with tempfile.TemporaryDirectory() as tmp:
        hog = os.path.join(tmp, "starving.ipynb")
        with open(hog, "w") as handle:
            json.dump(append_cell(release_notebook(args.assignment), STARVE.format(busy=args.busy), index=3), handle)
        alone, beside = [], []
        for run in range(args.runs):
            alone.append(grade(honest, os.path.join(tmp, "alone.json")))
            other = grade(hog, os.path.join(tmp, "starving.json"), wait=False)
            time.sleep(4.0)                         # the starving notebook is loaded and spinning
            beside.append(grade(honest, os.path.join(tmp, "beside.json")))
            other.terminate()
            other.wait()
            print(f"run {run + 1}: alone {alone[-1]:.1f} s, beside {args.busy} busy processes {beside[-1]:.1f} s",
                  flush=True)
    a, b = statistics.median(alone), statistics.median(beside)
    print(f"honest grading of {args.assignment}: alone {a:.1f} s, beside a starving submission {b:.1f} s "
          f"(medians of {args.runs}); slowdown {b / a:.2f}x")


if __name__ == "__main__":
    main()
