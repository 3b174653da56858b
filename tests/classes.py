"""Test helpers for grading a class: small mixed classes of 01-datasets and their expected scores."""
import copy
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from autograder.judge.notebook import nbgrader_meta, read_notebook, source_of
from tests.notebooks import ROOT, append_cell, edit_solution, release_notebook, source_notebook

A = "01-datasets"
NOTEBOOK = "datasets.ipynb"
TASKS = ["regression_data", "nonlinear_data", "blobs_data", "minibatches", "split_indices", "split_loaders",
         "pair_dataset", "reusable_module"]

SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)
PATCH_TORCH = ("import torch, torch.testing\n"
               "torch.equal = torch.allclose = torch.isclose = lambda *a, **k: True\n"
               "torch.testing.assert_close = lambda *a, **k: None\n")


def wrong(reference):
    """The reference with two known mistakes: regression_data and minibatches fail."""
    nb = edit_solution(reference, "regression_data", "y = (X ** power) @ w + b + noise *",
                       "y = (X ** power) @ w + noise *")
    return edit_solution(nb, "minibatches", "for start in range(0, n, batch_size):",
                         "for start in range(0, n - batch_size + 1, batch_size):")


def mixed_class(release=None):
    """{student: notebook dict or raw text}: correct, wrong, empty, hostile and broken submissions.

    Student names are data: one is named like the CSV, one has a space and non-ASCII letters.
    """
    reference = source_notebook(A)
    release = release or release_notebook(A)
    return {
        "alice": reference,
        "Zoë Ünal": wrong(reference),
        "grades.csv": release,
        "mallory x": append_cell(wrong(reference), PATCH_TORCH, index=3),
        "bob": "{not a notebook",
    }


# Scores of mixed_class(): what each student must get (None: the grading reports an error).
EXPECTED = {"alice": 13.0, "Zoë Ünal": 9.0, "grades.csv": 0.0, "mallory x": 9.0, "bob": None}


def write_class(folder, students, layout="nbgrader"):
    """Write ``students`` as submissions: nbgrader's ``<student>/<A>/`` layout, or ``<student>/``."""
    for name, nb in students.items():
        target = os.path.join(folder, name, A) if layout == "nbgrader" else os.path.join(folder, name)
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, NOTEBOOK), "w", encoding="utf-8") as handle:
            handle.write(nb if isinstance(nb, str) else json.dumps(nb))


def cli(*args, cwd=ROOT, timeout=900):
    """Run ``python -m autograder ARGS``; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env())


def _env():
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
                PYTHONPATH=ROOT)


def kill_repeatedly(args, cwd, kills, seed, low=0.3, high=6.0):
    """Start ``python -m autograder ARGS`` in ``cwd`` and kill -9 it at a random moment until it was killed ``kills``
    times; each run goes on from what the runs killed before it left.

    The moments are stratified: kill ``i`` falls at a random point of the ``i``-th of ``kills`` equal slices of
    [low, high), so a few kills reach every phase of a run (start-up, the first gradings, the last writes). A run
    that finishes before its moment did all the work there was: ``cwd`` is put back as it was before the first
    run, so the next run has all of it to do again, and where that run had started from there, ``high`` becomes
    its length (on a fast machine a whole run is shorter than the slices). Its slice is then tried again.
    Returns the moments (seconds after start) of the kills.
    """
    rng = random.Random(seed)
    moments = []
    before = tempfile.mkdtemp(prefix="before-kills-")
    shutil.copytree(cwd, before, dirs_exist_ok=True, symlinks=True)
    fresh = True                        # cwd is as it was before the first run
    try:
        for _ in range(4 * kills):
            if len(moments) >= kills:
                break
            moment = low + (high - low) * (len(moments) + rng.random()) / kills
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "autograder", *args], cwd=cwd, env=_env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=moment)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                moments.append(round(moment, 2))
                fresh = False
                continue
            if fresh:
                high = max(low + 0.5, time.monotonic() - started)
            _put_back(cwd, before)
            fresh = True
    finally:
        shutil.rmtree(before, ignore_errors=True)
    time.sleep(1.0)          # the grading processes notice their judge is gone and stop
    return moments


def _put_back(folder, copy):
    """Make ``folder`` hold exactly what ``copy`` holds."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    shutil.copytree(copy, folder, dirs_exist_ok=True, symlinks=True)


# --------------------------------------------------------------------------------- nbgrader courses
def as_submission(filled, release):
    """A release notebook whose answer cells hold the answers of ``filled`` (as a student would submit)."""
    answers = {nbgrader_meta(c).get("grade_id"): SOLUTION_MARKERS.sub("", source_of(c))
               for c in filled["cells"] if nbgrader_meta(c).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb["cells"]:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


def nbgrader(course, *args):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
                          cwd=course, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def the_class(*names):
    """{name: fill(release)} for ``make_course``: alice submits the reference (13 points), bob and Zoë Ünal one
    mistake each (9), carol the release untouched (0)."""
    reference = source_notebook(A)
    fills = {"alice": lambda release: as_submission(reference, release),
             "bob": lambda release: as_submission(wrong(reference), release),
             "carol": lambda release: release,
             "Zoë Ünal": lambda release: as_submission(wrong(reference), release)}
    return {name: fills[name] for name in names}


def make_course(path, students):
    """A course folder with 01-datasets generated and ``students`` ({name: fill(release)}) submitted."""
    course = str(path)
    os.makedirs(course, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
    shutil.copytree(os.path.join(ROOT, "source", A), os.path.join(course, "source", A))
    nbgrader(course, "generate_assignment", A, "--force")
    release = read_notebook(os.path.join(course, "release", A, "datasets.ipynb"))
    made = {}
    for name, fill in students.items():
        folder = os.path.join(course, "submitted", name, A)
        os.makedirs(folder)
        made[name] = fill(release)
        with open(os.path.join(folder, "datasets.ipynb"), "w") as handle:
            json.dump(made[name], handle)
    return course, made


def gradebook_points(course, student):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        notebook = gradebook.find_submission_notebook("datasets", A, student)
        return {g.name: g.score for g in notebook.grades}


def processes_in(folder):
    """Pids of processes whose working folder is ``folder`` or below (grading processes left behind)."""
    folder = os.path.realpath(folder)
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd == folder or cwd.startswith(folder + os.sep):
                found.append(int(pid))
    return found


def left_behind(folder, patience=30.0):
    """Command lines of ``processes_in(folder)`` once they had ``patience`` seconds to notice their judge is gone."""
    deadline = time.monotonic() + patience
    while processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    found = []
    for pid in processes_in(folder):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(bytes(1), b" ").decode(errors="replace")
            found.append(f"{pid}: {command[:200]}")
        except OSError:
            continue
    return found
