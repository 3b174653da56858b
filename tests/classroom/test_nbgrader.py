"""nbgrader end to end through the sandboxed engine: generate_assignment, autograde (ours in parallel, and
nbgrader's own command), generate_feedback and export give the CLI's points per task; hidden test cells
never run next to the student's code, so replacing the bridge or patching torch gains nothing. A notebook the
grading service graded while the student worked is not graded again by the class's autograde."""
import csv
import json
import os
import re
import sqlite3

import pytest

from tests.classes import A, cli, gradebook_points, make_course, nbgrader, the_class
from tests.notebooks import append_cell, grade
from tests.service import server

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
    served = _graded_by_the_service(course, "alice")
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
    return course, made, points, proc, served


def _graded_by_the_service(course, student):
    """The service's results for the notebook ``student`` handed in, as if submitted to it while they worked."""
    with open(os.path.join(course, "submitted", student, A, "datasets.ipynb"), "rb") as handle:
        nb = json.loads(handle.read())
    token = server.enrol(course, [student])[student]
    port = server.free_port()
    proc = server.start(course, port)
    try:
        accepted = server.submit(f"http://127.0.0.1:{port}", token, nb, A)
        assert accepted.status_code == 202, accepted.text
        view = server.result(f"http://127.0.0.1:{port}", token, accepted.json()["id"], patience=300)
    finally:
        server.stop(proc)
    assert view["status"] == "done", view
    return view["results"]


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_nbgrader_points_equal_cli_points(autograded, name):
    _, students, points, _, _ = autograded
    report = grade(students[name])
    assert points[name] == report.scores(), (points[name], report.scores())


def test_expected_scores_and_export(autograded):
    course, _, points, proc, _ = autograded
    assert sum(points["alice"].values()) == 13
    assert {k for k, v in points["bob"].items() if v == 0} == {"regression_data", "minibatches"}
    assert sum(points["carol"].values()) == 0
    assert "Graded: 3 submission(s)" in proc.stdout
    assert "Graded again" not in proc.stdout           # nbgrader recorded the parallel gradings as they were
    with open(os.path.join(course, "grades.csv"), newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(rows["alice"]["raw_score"]) == 13 and float(rows["bob"]["raw_score"]) == 9


def test_replacing_the_bridge_or_patching_torch_gains_nothing(autograded):
    _, _, points, _, _ = autograded
    assert sum(points["mallory"].values()) == 0, points["mallory"]


def test_one_grade_per_task_and_student(autograded):
    course, students, _, _, _ = autograded
    with sqlite3.connect(os.path.join(course, "gradebook.db")) as db:
        rows = db.execute("SELECT notebook_id, cell_id, COUNT(*) FROM grade GROUP BY notebook_id, cell_id").fetchall()
        assert rows and all(count == 1 for _, _, count in rows)
        assert db.execute("SELECT COUNT(*) FROM grade").fetchone()[0] == 8 * len(students)


def test_feedback_hides_grader_code(autograded):
    course, _, _, _, _ = autograded
    html = open(os.path.join(course, "feedback", "bob", A, "datasets.html")).read()
    assert "Task regression_data failed" in html and "Task minibatches failed" in html
    # the list of tasks at the top says each task's first line, as the Submit for feedback panel does
    assert re.search(r'<a href="#regression_data">Task <code>regression_data</code></a> \(Score: 0\.0 / \d\.0\): '
                     r'<span class="task-feedback">[^<]*is the bias b added exactly once\?</span>', html)
    for leak in ("check_task", "autograder", "HIDDEN TESTS", "probe_", "def test_", "graders"):
        assert leak not in html, leak


def test_what_the_service_graded_is_not_graded_again_and_gets_the_same_points(autograded):
    course, _, points, proc, served = autograded
    assert "Graded: 3 submission(s) (2 in this run, 1 unchanged since an earlier run)" in proc.stdout, proc.stdout
    assert {test["number"]: test["score"] for test in served["tests"]} == points["alice"]


def test_the_class_report_agrees_with_the_gradebook(autograded, tmp_path):
    """The report's numbers from the submitted folder, the class grading's reports and the service's database
    equal the gradebook's; the page renders in a browser (a screenshot goes to $COURSE_ARTIFACTS)."""
    course, _, points, _, served = autograded
    proc = cli("report", A, "--html", str(tmp_path / "report.html"), "--csv", str(tmp_path / "csv"), cwd=course)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(tmp_path / "csv" / "tasks.csv", newline="") as handle:
        tasks = {row["task"]: row for row in csv.DictReader(handle)}
    with open(tmp_path / "csv" / "students.csv", newline="") as handle:
        students = {row["student"]: row for row in csv.DictReader(handle)}
    graded = ["alice", "bob", "carol"]                  # mallory: graded by nbgrader's own command, nothing kept
    assert set(tasks) == set(points["alice"])
    for task, row in tasks.items():
        passed = sum(points[name][task] >= float(row["max_score"]) for name in graded)
        assert (int(row["students"]), int(row["passed"])) == (3, passed), (task, row)
    assert {name: float(students[name]["latest_score"]) for name in graded} == {
        name: sum(points[name].values()) for name in graded}
    assert students["alice"]["attempts"] == "2"         # the service's grading and the handed-in notebook
    assert students["mallory"]["submitted"] == "True" and students["mallory"]["latest_score"] == ""
    with open(tmp_path / "csv" / "failures.csv", newline="") as handle:
        failures = list(csv.DictReader(handle))
    assert {row["task"] for row in failures} == {t for t in points["bob"] if points["bob"][t] == 0} | {
        t for t in points["carol"] if points["carol"][t] == 0}
    assert all(row["example_student"] in ("bob", "carol") for row in failures)
    assert "def test_" not in (tmp_path / "report.html").read_text()
    _screenshot(tmp_path / "report.html", tmp_path)


def _screenshot(page, tmp_path):
    """The page in Chromium, saved as class-report.png (skipped where Debian's chromium is not installed)."""
    from pathlib import Path

    from tests.browser import CHROMIUM, browser_page

    if not CHROMIUM.exists():
        return
    artifacts = Path(os.environ.get("COURSE_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with browser_page(viewport=(1200, 900)) as tab:
        tab.goto(Path(page).as_uri())
        assert tab.locator("svg").count() == 3 and tab.locator("h1").inner_text().startswith(A)
        tab.screenshot(path=str(artifacts / "class-report.png"), full_page=True)
