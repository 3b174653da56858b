"""nbgrader's classroom cycle through the course exchange, end to end, in temporary folders: the release
command, release_assignment (which carries the course library), the students' Assignment List,
fetch_assignment and submit, collect, autograde, feedback (which names each task), release_feedback,
fetch_feedback and export. Every nbgrader command runs
as `python -m nbgrader` with the virtual environment NOT on PATH, as an instructor who did not activate it."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from autograder.judge.notebook import nbgrader_meta
from autograder.distribute.release import generate_releases
from tests.classes import as_submission
from tests.hostile import THIEF
from tests.notebooks import ROOT, append_cell, source_notebook

A = "01-datasets"
NOTEBOOK = "datasets.ipynb"
COURSE_LIST = """
import json
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList
manager = AssignmentList()
manager.root_dir = "."
print(json.dumps({"courses": manager.list_courses(), "assignments": manager.list_assignments()}))
"""


# The tests below share one course folder: one xdist worker builds it once.
pytestmark = pytest.mark.xdist_group("exchange")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    top = tmp_path_factory.mktemp("classroom")
    course, exchange = top / "course", top / "exchange"
    (course / "source").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
    shutil.copytree(os.path.join(ROOT, "source", A), course / "source" / A)
    (top / "jupyter").mkdir()
    env = dict(os.environ, COURSE_EXCHANGE_DIR=str(exchange), HOME=str(top), JUPYTER_DATA_DIR=str(top / "data"),
               JUPYTER_CONFIG_DIR=str(top / "jupyter"), PATH="/usr/bin:/bin")
    env.pop("VIRTUAL_ENV", None)

    def nbgrader(cwd, *args):
        # Each user has a home of their own (nbgrader keeps students' submission records there).
        own = dict(env, HOME=str(cwd), JUPYTER_DATA_DIR=str(cwd / ".jupyter-data"))
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=own, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"nbgrader {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr

    # Instructor: the release command makes release/, the student bundle and the gradebook's record.
    generate_releases([A], root=str(course))
    nbgrader(course, "release_assignment", A)
    # Students work in a folder holding their bundle's nbgrader settings.
    students = {}
    for name in ("alice", "bob", "eve"):
        folder = top / name
        folder.mkdir()
        shutil.copy(course / "dist" / "student" / A / "nbgrader_config.py", folder)
        students[name] = folder
    listed = subprocess.run([sys.executable, "-c", COURSE_LIST], cwd=students["alice"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    nbgrader(students["alice"], "fetch_assignment", A)
    fetched = students["alice"] / A / NOTEBOOK
    shutil.copytree(students["alice"] / A, students["bob"] / A)        # bob hands in the release untouched
    with open(fetched) as handle:
        release = json.load(handle)
    shutil.copytree(students["alice"] / A, students["eve"] / A)        # eve runs any finished code she can find
    with open(students["eve"] / A / NOTEBOOK, "w") as handle:
        json.dump(append_cell(release, THIEF), handle)
    with open(fetched, "w") as handle:
        json.dump(as_submission(source_notebook(A), release), handle)
    for name, folder in students.items():
        nbgrader(folder, "submit", A, f"--student={name}")
    # Instructor: collect, autograde, feedback, export.
    nbgrader(course, "collect", A)
    nbgrader(course, "autograde", A)
    nbgrader(course, "generate_feedback", A)
    nbgrader(course, "release_feedback", A)
    nbgrader(students["alice"], "fetch_feedback", A, "--student=alice")
    nbgrader(course, "export")
    return {"top": top, "course": course, "exchange": exchange, "students": students, "fetched": fetched,
            "listed": json.loads(listed.stdout.strip().splitlines()[-1])}


def test_release_command_fills_the_course(classroom):
    course = classroom["course"]
    assert os.path.isfile(course / "release" / A / NOTEBOOK)
    assert os.path.isfile(course / "dist" / "student" / A / "README.md")
    assert os.path.isfile(course / "gradebook.db")


def test_assignment_list_shows_the_course(classroom):
    listed = classroom["listed"]
    assert listed["courses"] == {"success": True, "value": ["pytorch-course"]}, listed["courses"]
    assert [a["assignment_id"] for a in listed["assignments"]["value"]] == [A]


def test_fetch_gives_the_release_and_collect_gets_every_submission(classroom):
    course = classroom["course"]
    with open(classroom["students"]["bob"] / A / NOTEBOOK) as fetched, \
            open(course / "release" / A / NOTEBOOK) as released:
        assert json.load(fetched) == json.load(released)
    assert os.path.isdir(classroom["exchange"] / "pytorch-course" / "outbound" / A)
    assert sorted(os.listdir(course / "submitted")) == ["alice", "bob", "eve"]


IMPORTS = """
import importlib, json, os
out = {}
for module in ("course.data", "course.datasets"):
    try:
        out[module] = ["ok", os.path.realpath(importlib.import_module(module).__file__)]
    except ImportError as error:
        out[module] = ["ImportError", str(error)]
print(json.dumps(out))
"""


def test_fetched_assignment_carries_the_library_its_notebook_imports(classroom):
    """On a JupyterHub there is no bundle: the fetched folder holds the notebook and, beside it, the course
    library this lesson may import (earlier lessons' code and the tools; this lesson's module a stub)."""
    folder = classroom["students"]["bob"] / A
    assert sorted(os.listdir(folder)) == ["course", NOTEBOOK]
    proc = subprocess.run([sys.executable, "-c", IMPORTS], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONSAFEPATH=""))
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["course.data"] == ["ok", os.path.realpath(folder / "course" / "data.py")], found
    assert found["course.datasets"][0] == "ImportError" and "holds the answers of 01-datasets" in found["course.datasets"][1]


def test_autograde_puts_grades_in_the_gradebook_and_export(classroom):
    from nbgrader.api import Gradebook

    course = classroom["course"]
    with Gradebook(f"sqlite:///{course}/gradebook.db", "pytorch-course") as gradebook:
        scores = {s: (gradebook.find_submission(A, s).score, gradebook.find_submission(A, s).max_score)
                  for s in ("alice", "bob", "eve")}
    assert scores["alice"][0] == scores["alice"][1] > 0, scores
    assert scores["bob"][0] == scores["eve"][0] == 0, scores
    with open(course / "grades.csv") as handle:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert rows == {"alice": scores["alice"][0], "bob": 0.0, "eve": 0.0}


def test_feedback_names_each_task_and_hides_the_tests(classroom):
    course = classroom["course"]
    html = open(course / "feedback" / "bob" / A / NOTEBOOK.replace(".ipynb", ".html")).read()
    tasks = [nbgrader_meta(c)["grade_id"] for c in source_notebook(A)["cells"]
             if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")]
    for task in tasks:
        assert f'<a href="#{task}">Task <code>{task}</code></a>' in html, task
    assert "Test cell" not in html
    for leak in ("check_task", "HIDDEN TESTS", "autograder", "def test_"):
        assert leak not in html, leak
    fetched = glob.glob(str(classroom["students"]["alice"] / A / "feedback" / "*" / "datasets.html"))
    assert len(fetched) == 1, "alice fetched her feedback"
