"""nbgrader end to end through the sandboxed engine: generate_assignment, autograde (ours in parallel, and
nbgrader's own command), generate_feedback and export give the CLI's points per task; hidden test cells
never run next to the student's code, so replacing the bridge or patching torch gains nothing."""
import csv
import json
import os
import sqlite3

import pytest

from tests.classes import A, cli, gradebook_points, make_course, nbgrader, the_class
from tests.notebooks import append_cell, grade

FAKE_BRIDGE = '''
import sys, types
def check_task(task_id, namespace):
    print(f"Task {task_id}: all checks passed.")
fake = types.ModuleType("autograder.bridge")
fake.check_task = check_task
sys.modules["autograder.bridge"] = fake
try:
    import autograder
    autograder.bridge = fake
except Exception:
    pass
import torch
torch.equal = torch.allclose = torch.isclose = lambda *a, **k: True
'''

# The tests below share one graded class: one xdist worker grades it once.
pytestmark = pytest.mark.xdist_group("nbgrader")


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    students = the_class("alice", "bob", "carol")
    course, made = make_course(tmp_path_factory.mktemp("course"), students)
    proc = cli("autograde", A, "--jobs", "2", cwd=course)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # nbgrader's own command grades through the same engine (no cached report for this student).
    mallory = append_cell(made["carol"], FAKE_BRIDGE, index=3)
    folder = os.path.join(course, "submitted", "mallory", A)
    os.makedirs(folder)
    with open(os.path.join(folder, "datasets.ipynb"), "w") as handle:
        json.dump(mallory, handle)
    made["mallory"] = mallory
    nbgrader(course, "autograde", A, "--student", "mallory")
    nbgrader(course, "generate_feedback", A, "--force")
    nbgrader(course, "export")
    points = {name: gradebook_points(course, name) for name in made}
    return course, made, points, proc


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_nbgrader_points_equal_cli_points(autograded, name):
    _, students, points, _ = autograded
    report = grade(students[name])
    assert points[name] == report.scores(), (points[name], report.scores())


def test_expected_scores_and_export(autograded):
    course, _, points, proc = autograded
    assert sum(points["alice"].values()) == 13
    assert {k for k, v in points["bob"].items() if v == 0} == {"regression_data", "minibatches"}
    assert sum(points["carol"].values()) == 0
    assert "Graded: 3 submission(s)" in proc.stdout
    assert "Graded again" not in proc.stdout           # nbgrader recorded the parallel gradings as they were
    with open(os.path.join(course, "grades.csv"), newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(rows["alice"]["raw_score"]) == 13 and float(rows["bob"]["raw_score"]) == 9


def test_replacing_the_bridge_or_patching_torch_gains_nothing(autograded):
    _, _, points, _ = autograded
    assert sum(points["mallory"].values()) == 0, points["mallory"]


def test_one_grade_per_task_and_student(autograded):
    course, students, _, _ = autograded
    with sqlite3.connect(os.path.join(course, "gradebook.db")) as db:
        rows = db.execute("SELECT notebook_id, cell_id, COUNT(*) FROM grade GROUP BY notebook_id, cell_id").fetchall()
        assert rows and all(count == 1 for _, _, count in rows)
        assert db.execute("SELECT COUNT(*) FROM grade").fetchone()[0] == 8 * len(students)


def test_feedback_hides_grader_code(autograded):
    course, _, _, _ = autograded
    html = open(os.path.join(course, "feedback", "bob", A, "datasets.html")).read()
    assert "Task regression_data failed" in html and "Task minibatches failed" in html
    for leak in ("check_task", "autograder", "HIDDEN TESTS", "probe_", "def test_", "graders"):
        assert leak not in html, leak
