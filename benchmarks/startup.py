"""Start-up cost of the processes grading and teaching start again and again: medians of several runs.

Every grading process imports torch, every nbgrader command and Jupyter server imports nbformat, and the
command line starts for every submission, so their import time is paid thousands of times in a term. Prints
the median wall time of each start in a fresh interpreter, and whether the virtual environment's packages
were compiled to bytecode (without .pyc files, and with PYTHONDONTWRITEBYTECODE set, every process compiles
what it imports again).

    .venv/bin/python benchmarks/startup.py [--runs 5]
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

STARTS = {
    "torch (each grading process)": ["-c", "import torch"],
    "nbformat (nbgrader, Validate, Jupyter)": ["-c", "import nbformat"],
    "nbgrader's commands": ["-c", "import nbgrader.apps"],
    "the judge (engine and sandbox)": ["-c", "import autograder.judge.engine, autograder.sandbox.student"],
    "python -m autograder --help": ["-m", "autograder", "--help"],
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds(args):
    """Wall seconds of a fresh interpreter started with ``args``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def compiled_share(package):
    """Share of ``package``'s .py files whose bytecode is cached (a .pyc in __pycache__ beside them)."""
    from importlib.util import cache_from_source, find_spec

    folder = os.path.dirname(find_spec(package).origin)
    sources = glob.glob(os.path.join(folder, "**", "*.py"), recursive=True)
    return sum(os.path.exists(cache_from_source(path)) for path in sources) / max(1, len(sources))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per import (median reported)")
    args = parser.parse_args()
    from importlib.metadata import version

    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}  "
          f"torch compiled: {compiled_share('torch'):.0%}  jsonschema {version('jsonschema')} (4.24 and later build an IRI parser on import)")
    for args_ in STARTS.values():
        seconds(args_)                                   # the first starts warm the file cache
    base = statistics.median(seconds(["-c", "pass"]) for _ in range(args.runs))
    print(f"{'empty interpreter':42s} {base:6.2f} s")
    for label, start in STARTS.items():
        median = statistics.median(seconds(start) for _ in range(args.runs))
        print(f"{label:42s} {median:6.2f} s  ({median / base:4.1f}x the empty interpreter)")


if __name__ == "__main__":
    main()
