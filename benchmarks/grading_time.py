"""Grading time: `python -m autograder grade` on each assignment's reference, and against nbgrader.

    .venv/bin/python benchmarks/grading_time.py                     # every assignment + nbgrader on 01
    .venv/bin/python benchmarks/grading_time.py --runs 3 01-datasets --no-nbgrader
    .venv/bin/python benchmarks/grading_time.py --sandbox-cost 01-datasets 03-linear-regression 07-mnist-cnn
    .venv/bin/python benchmarks/grading_time.py --against 2cc7f3b --runs 3     # this tree vs an older commit

Prints medians of ``--runs`` whole-command runs (wall time, process start included). For 01-datasets it
also times ``nbgrader autograde`` of the same submission in a throw-away course and prints the ratio
(target: ours <= 0.5x nbgrader's). Targets: <= 15 s per assignment on 2 CPU cores.
``--sandbox-cost`` alternates sandboxed runs with ``--unsafe-no-sandbox`` runs of the same grading and
prints both medians and their difference: what the sandbox costs, measured under the same load.
``--against REV`` checks REV out into a temporary worktree and alternates gradings of this tree and of REV
(each with its own engine and graders, the same reference notebook): the ratio is what a change costs.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autograder.distribute.release import source_assignments  # noqa: E402
from autograder.judge.tasks import lesson_name  # noqa: E402


def timed(cmd, cwd=ROOT, env=None):
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed, proc


def time_cli(assignment, runs, extra=(), root=ROOT):
    notebook = os.path.join(root, "source", assignment, lesson_name(assignment) + ".ipynb")
    times, score = [], None
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.json")
        for _ in range(runs):
            elapsed, _ = timed([sys.executable, "-m", "autograder", "grade", notebook, "--results", results,
                                *extra], cwd=root, env=dict(os.environ, PYTHONPATH=root, COURSE_SHARED_DATA=os.environ.get(
                                    "COURSE_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))))
            times.append(elapsed)
            with open(results) as handle:
                data = json.load(handle)
            score = (data["score"], sum(t["max_score"] for t in data["tests"]))
    return times, score


def time_nbgrader(assignment, runs):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    times = []
    with tempfile.TemporaryDirectory() as course:
        shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
        shutil.copytree(os.path.join(ROOT, "source", assignment), os.path.join(course, "source", assignment))
        base = [sys.executable, "-m", "nbgrader"]
        root = f"--CourseDirectory.root={course}"
        timed(base + ["generate_assignment", assignment, "--force", root], cwd=course, env=env)
        submitted = os.path.join(course, "submitted", "student", assignment)
        os.makedirs(submitted)
        shutil.copy(os.path.join(ROOT, "source", assignment, lesson_name(assignment) + ".ipynb"), submitted)
        for _ in range(runs):
            elapsed, _ = timed(base + ["autograde", assignment, "--force", root], cwd=course, env=env)
            times.append(elapsed)
    return times


def describe(times):
    return f"median {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-nbgrader", action="store_true")
    parser.add_argument("--sandbox-cost", action="store_true", help="sandboxed vs --unsafe-no-sandbox, alternating")
    parser.add_argument("--against", metavar="REV", help="alternate with the engine and graders of commit REV")
    args = parser.parse_args()
    assignments = args.assignments or source_assignments()
    if args.against:
        return compare(assignments, args.against, args.runs)
    if args.sandbox_cost:
        print(f"sandbox cost: medians of {args.runs} alternating runs, {os.cpu_count()} CPU cores")
        for assignment in assignments:
            boxed, bare = [], []
            for _ in range(args.runs):
                boxed += time_cli(assignment, 1)[0]
                bare += time_cli(assignment, 1, ["--unsafe-no-sandbox"])[0]
            cost = statistics.median(boxed) - statistics.median(bare)
            print(f"  {assignment:<24} sandbox {describe(boxed)}")
            print(f"  {'':<24} none    {describe(bare)}")
            print(f"  {'':<24} cost {cost:+.2f} s ({cost / statistics.median(bare):+.0%})")
        return
    print(f"grading time of each reference notebook, {args.runs} runs, {os.cpu_count()} CPU cores")
    medians = {}
    for assignment in assignments:
        times, score = time_cli(assignment, args.runs)
        medians[assignment] = statistics.median(times)
        flag = "ok" if medians[assignment] <= 15 else "OVER 15 s"
        print(f"  autograder grade {assignment:<24} {describe(times)}  score {score[0]:g}/{score[1]:g}  {flag}")
    if not args.no_nbgrader and "01-datasets" in assignments:
        nb_times = time_nbgrader("01-datasets", args.runs)
        ours = medians["01-datasets"]
        theirs = statistics.median(nb_times)
        print(f"  nbgrader autograde 01-datasets         {describe(nb_times)}")
        print(f"  ratio autograder / nbgrader on 01-datasets: {ours / theirs:.2f}x (target <= 0.5x)")


def compare(assignments, rev, runs):
    """Alternating gradings of this tree and of commit ``rev``: medians and their ratio per assignment."""
    with tempfile.TemporaryDirectory() as tmp:
        other = os.path.join(tmp, "tree")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", other, rev], cwd=ROOT, check=True)
        try:
            print(f"grading time, this tree vs {rev}: medians of {runs} alternating runs, {os.cpu_count()} CPU cores")
            for assignment in assignments:
                new, old = [], []
                for _ in range(runs):
                    new += time_cli(assignment, 1)[0]
                    old += time_cli(assignment, 1, root=other)[0]
                ratio = statistics.median(new) / statistics.median(old)
                print(f"  {assignment:<24} now {describe(new)}")
                print(f"  {'':<24} {rev[:7]:<3} {describe(old)}  ratio {ratio:.2f}x", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", other], cwd=ROOT)


if __name__ == "__main__":
    main()
