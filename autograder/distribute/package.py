"""Hosted graders: Gradescope's autograder.zip, and the grading step of a GitHub Classroom workflow.

``python -m autograder package gradescope ASSIGNMENT`` writes a zip with, at its root:

- ``setup.sh`` (Gradescope runs it once, as root, on its Ubuntu image): installs bubblewrap and the
  Python packages of ``requirements.txt`` into ``/autograder/venv``;
- ``run_autograder``: grades ``/autograder/submission/*.ipynb`` and writes
  ``/autograder/results/results.json`` in Gradescope's format (one test per task, named by the task);
- the ``autograder`` and ``course`` packages (with every assignment's graders) and ``pyproject.toml``;
- ``data/mnist/``: the MNIST test split, for the assignments whose graders load it (06, 07). No
  grader of this course reads Fashion-MNIST (the student's process never sees data files), so the zip
  carries none; a course that adds such a grader gets ``dataset-fashion-mnist`` installed by setup.sh.

``AUTOGRADER_ROOT`` (default ``/autograder``) and ``AUTOGRADER_PYTHON`` (default the venv's python)
let the same script run anywhere, e.g. in a test standing in for Gradescope.
"""
import base64
import json
import os
import sys
import time
import zipfile

from autograder.judge.report import Report, TaskResult, write_json_atomic

from autograder import PACKAGE_DIR, ROOT as REPO
SKIP = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (Ubuntu, as root).
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq bubblewrap python3 python3-venv python3-pip {extra_debs}>/dev/null
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install -q --upgrade pip
"$ROOT/venv/bin/python" -m pip install -q -r "$ROOT/source/requirements.txt"
# The engine, hidden graders, the finished course library and held-out data: readable by the grader (root)
# only, never by a student's process (the judge stages what a submission may import into its sandbox).
chmod -R go-rwx "$ROOT/source"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the notebook, write results/results.json.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT/source"
exec "$PYTHON" -m autograder.distribute.package run {assignment} "$ROOT"
"""


def _data_needs(assignment):
    """('mnist' to carry?, Debian packages to install) for the graders of ``assignment``."""
    from autograder.judge.tasks import load_assignment

    folder = load_assignment(assignment).path
    text = ""
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                text += handle.read().lower()
    mnist = "mnist_test_split" in text or "load_mnist" in text
    debs = ["dataset-fashion-mnist"] if "fashion" in text and "load_fashion" in text else []
    return mnist, debs


def _requirements():
    """The runtime dependencies from pyproject.toml, one per line."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        return "\n".join(tomllib.load(handle)["project"]["dependencies"]) + "\n"


def _add_tree(archive, folder, arcname):
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(parent, name)
            archive.write(path, os.path.join(arcname, os.path.relpath(path, folder)))


def _add_text(archive, name, text, mode=0o644):
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def build_gradescope(assignment, out="autograder.zip"):
    """Write Gradescope's autograder.zip for ``assignment``; returns its path."""
    from autograder.judge.tasks import available_assignments

    if assignment not in available_assignments():
        raise SystemExit(f"error: unknown assignment {assignment!r} (known: {', '.join(available_assignments())})")
    mnist, debs = _data_needs(assignment)
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    temporary = out + ".tmp"
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_text(archive, "setup.sh", SETUP_SH.format(extra_debs="".join(d + " " for d in debs)), 0o755)
        _add_text(archive, "run_autograder", RUN_AUTOGRADER.format(assignment=assignment), 0o755)
        _add_text(archive, "requirements.txt", _requirements())
        _add_text(archive, "ASSIGNMENT", assignment + "\n")
        archive.write(os.path.join(REPO, "pyproject.toml"), "pyproject.toml")
        _add_tree(archive, PACKAGE_DIR, "autograder")
        _add_tree(archive, os.path.join(REPO, "course"), "course")
        if mnist:
            from course.data import _find_split

            folder, paths = _find_split("mnist", None, False)
            if folder is None:
                raise SystemExit("error: the graders need MNIST's test split, which course.data cannot find "
                                 "(see course/data.py for where it looks)")
            for path in paths:
                archive.write(path, os.path.join("data", "mnist", os.path.basename(path)))
    os.replace(temporary, out)
    return out


# -------------------------------------------------------------------------------- grading, hosted
def find_notebook(folder, assignment):
    """The submitted notebook under ``folder``: the lesson's file name first, else the only/first one."""
    from autograder.judge.tasks import lesson_name

    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, f) for f in sorted(files) if f.endswith(".ipynb") and not f.startswith(".")]
    wanted = lesson_name(assignment) + ".ipynb"
    for path in found:
        if os.path.basename(path) == wanted:
            return path
    return found[0] if found else None


def grade_folder_once(folder, assignment, limits=None):
    """The Report of the notebook submitted in ``folder`` (a report saying so when there is none)."""
    from autograder.judge.engine import grade_notebook
    from autograder.judge.tasks import lesson_name, load_assignment

    path = find_notebook(folder, assignment)
    if path is None:
        message = f"No notebook was submitted: upload {lesson_name(assignment)}.ipynb."
        tasks = [TaskResult(t.id, t.title, float(t.points), 0.0, [message]) for t in load_assignment(assignment).tasks]
        return Report(assignment=assignment, tasks=tasks, messages=[message])
    return grade_notebook(path, assignment=assignment, limits=limits)


def run_gradescope(assignment, root):
    """Grade ``root/submission`` and write ``root/results/results.json``; returns the exit status."""
    report = grade_folder_once(os.path.join(root, "submission"), assignment)
    write_json_atomic(os.path.join(root, "results", "results.json"), report.to_gradescope())
    print(report.table())
    if report.sandbox:
        print("protections in force: " + "; ".join(report.sandbox))
    return 0


def classroom_payload(report):
    """GitHub Classroom's grading-reporter payload (version 1): one test per task, with its points."""
    tests = [{"name": f"Task {t.id}: {t.title}", "status": "pass" if t.passed else "fail", "score": t.score,
              "max_score": t.max_score, "message": t.output, "test_code": "", "filename": "", "line_no": 0,
              "execution_time": ""} for t in report.tasks]
    status = "error" if report.error else ("pass" if all(t.passed for t in report.tasks) else "fail")
    payload = {"version": 1, "status": status, "max_score": report.max_score, "tests": tests}
    if report.error:
        payload["message"] = report.error
    return payload


def run_classroom(folder, assignment, output=None):
    """Grade the notebook in ``folder``; append ``result=<base64 payload>`` to ``output`` ($GITHUB_OUTPUT)."""
    report = grade_folder_once(folder, assignment)
    encoded = base64.b64encode(json.dumps(classroom_payload(report)).encode()).decode()
    output = output or os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"result={encoded}\n")
    else:
        print(f"result={encoded}")
    print(report.table(), file=sys.stderr)
    return 0


def main(argv=None):
    """``python -m autograder.distribute.package run ASSIGNMENT ROOT`` (what run_autograder calls)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "run":
        return run_gradescope(argv[1], os.path.abspath(argv[2]))
    print("usage: python -m autograder.distribute.package run ASSIGNMENT ROOT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
