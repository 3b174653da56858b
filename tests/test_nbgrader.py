"""nbgrader end to end: generate_assignment, autograde and generate_feedback give the CLI's points per task."""
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from autograder.notebook import nbgrader_meta, source_of
from tests.notebooks import ROOT, edit_solution, grade, release_notebook, source_notebook

A = "01-datasets"
SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)


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
                          cwd=course, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    course = str(tmp_path_factory.mktemp("course"))
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
    shutil.copytree(os.path.join(ROOT, "source", A), os.path.join(course, "source", A))
    nbgrader(course, "generate_assignment", A, "--force")
    release = release_notebook(A)
    reference = source_notebook(A)
    wrong = edit_solution(reference, "regression_data", "y = (X ** power) @ w + b + noise *",
                          "y = (X ** power) @ w + noise *")
    wrong = edit_solution(wrong, "minibatches", "for start in range(0, n, batch_size):",
                          "for start in range(0, n - batch_size + 1, batch_size):")
    students = {"alice": as_submission(reference, release), "bob": as_submission(wrong, release),
                "carol": release}
    for name, nb in students.items():
        folder = os.path.join(course, "submitted", name, A)
        os.makedirs(folder)
        with open(os.path.join(folder, "datasets.ipynb"), "w") as handle:
            json.dump(nb, handle)
    env_course = course
    nbgrader(env_course, "autograde", A, "--force")
    nbgrader(env_course, "generate_feedback", A, "--force")
    from nbgrader.api import Gradebook
    points = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        for name in students:
            notebook = gradebook.find_submission_notebook("datasets", A, name)
            points[name] = {g.name: g.score for g in notebook.grades}
    return course, students, points


@pytest.mark.parametrize("name", ["alice", "bob", "carol"])
def test_nbgrader_points_equal_cli_points(autograded, name):
    _, students, points = autograded
    report = grade(students[name])
    assert points[name] == report.scores(), (points[name], report.scores())


def test_expected_scores(autograded):
    _, _, points = autograded
    assert sum(points["alice"].values()) == 13
    assert {k for k, v in points["bob"].items() if v == 0} == {"regression_data", "minibatches"}
    assert sum(points["carol"].values()) == 0


def test_feedback_hides_grader_code(autograded):
    course, _, _ = autograded
    html = open(os.path.join(course, "feedback", "bob", A, "datasets.html")).read()
    assert "Task regression_data failed" in html and "Task minibatches failed" in html
    # Tracebacks of the student's own visible cells are fine; grader code must never appear.
    for leak in ("check_task", "autograder", "HIDDEN TESTS", "probe_", "def test_", "graders"):
        assert leak not in html, leak
