"""``autograder batch``: layouts, names as data, task-ordered CSV, re-runs, parallel == sequential, kill -9."""
import csv
import json
import os

import pytest

from tests.classes import A, EXPECTED, TASKS, cli, kill_repeatedly, left_behind, mixed_class, write_class

# The tests below share one graded class: one xdist worker grades it once.
pytestmark = pytest.mark.xdist_group("batch")


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def results_of(out):
    """{student: (score, {task: (score, feedback)}, error)} from out/results/*/report.json."""
    found = {}
    base = os.path.join(out, "results")
    for name in os.listdir(base):
        with open(os.path.join(base, name, "report.json"), encoding="utf-8") as handle:
            data = json.load(handle)
        assert data["student"] == name
        report = data["report"]
        found[name] = (sum(t["score"] for t in report["tasks"]),
                       {t["id"]: (t["score"], t["feedback"]) for t in report["tasks"]}, report["error"])
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The mixed class in nbgrader's layout, graded with --jobs 2 and with --jobs 1."""
    base = tmp_path_factory.mktemp("batch")
    submitted = base / "submitted"
    write_class(str(submitted), mixed_class())
    runs = {}
    for jobs in (2, 1):
        out = base / f"out{jobs}"
        proc = cli("batch", str(submitted), "--assignment", A, "--out", str(out), "--jobs", str(jobs))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        runs[jobs] = (out, proc)
    return base, runs


def test_nbgrader_layout_and_names_are_data(graded):
    _, runs = graded
    out, proc = runs[2]
    rows = read_csv(out / "grades.csv")
    assert rows[0] == ["student", "score", "max_score", *TASKS, "error"]     # the notebook's task order
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == set(EXPECTED)
    for name, score in EXPECTED.items():
        if score is None:
            assert by_name[name][-1], "a broken notebook's row says why it was not graded"
        else:
            assert float(by_name[name][1]) == score, (name, by_name[name])
            assert (out / "results" / name / "results.json").is_file()
    assert "Failed to grade: 1" in proc.stdout and "Mean score per task" in proc.stdout


def test_parallel_equals_sequential(graded):
    _, runs = graded
    parallel, sequential = results_of(runs[2][0]), results_of(runs[1][0])
    assert parallel == sequential
    assert parallel["mallory x"][1] == parallel["Zoë Ünal"][1], "patching torch gained something"


def test_rerun_keeps_earlier_students_and_skips_unchanged(graded, tmp_path):
    base, runs = graded
    out = runs[2][0]
    before = results_of(out)
    later = tmp_path / "later"                     # a second folder: one new student, one unchanged
    write_class(str(later), {"alice": mixed_class()["alice"], "newcomer": mixed_class()["grades.csv"]},
                layout="flat")
    proc = cli("batch", str(later), "--assignment", A, "--out", str(out), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(1 in this run, 1 unchanged" in proc.stdout
    # The class again, unchanged: only bob's broken file is tried again, and fails again. His to fix: exit 0.
    again = cli("batch", str(base / "submitted"), "--assignment", A, "--out", str(out), "--jobs", "2")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "(0 in this run" in again.stdout and "Failed to grade: 1" in again.stdout, again.stdout[-2000:]
    after = results_of(out)
    assert set(after) == set(before) | {"newcomer"}
    assert {k: v for k, v in after.items() if k != "newcomer"} == before
    names = [row[0] for row in read_csv(out / "grades.csv")[1:]]
    assert sorted(names) == sorted(set(EXPECTED) | {"newcomer"})


def test_a_class_with_nothing_gradable_exits_2(tmp_path):
    write_class(str(tmp_path / "in"), {"bob": mixed_class()["bob"]}, layout="flat")
    proc = cli("batch", str(tmp_path / "in"), "--assignment", A, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Failed to grade: 1" in proc.stdout and "not valid notebook JSON" in proc.stdout, proc.stdout[-2000:]


def test_empty_folder_fails_loudly(tmp_path):
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    proc = cli("batch", str(tmp_path / "empty"), "--assignment", A, "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    assert "no submissions found" in proc.stderr
    for layout in (f"<student>/{A}/*.ipynb", "<student>/*.ipynb", "<student>.ipynb"):
        assert layout in proc.stderr


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun(tmp_path):
    class_ = mixed_class()
    class_ = {"alice": class_["alice"], "Zoë Ünal": class_["Zoë Ünal"], "grades.csv": class_["grades.csv"],
              "bob": class_["bob"]}
    write_class(str(tmp_path / "submitted"), class_)
    out = tmp_path / "out"
    args = ["batch", str(tmp_path / "submitted"), "--assignment", A, "--out", str(out), "--jobs", "2"]
    moments = kill_repeatedly(args, str(tmp_path), kills=5, seed=9, low=0.5, high=8.0)
    assert len(moments) >= 5, moments
    assert left_behind(tmp_path) == [], "a killed run left grading processes behind"
    proc = cli(*args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    found = results_of(out)
    assert set(found) == set(class_)
    for name, (score, tasks, error) in found.items():
        expected = EXPECTED[name]
        if expected is None:
            assert error
        else:
            assert sorted(tasks) == sorted(TASKS) and score == expected, (name, score)
    rows = read_csv(out / "grades.csv")
    assert sorted(row[0] for row in rows[1:]) == sorted(class_)
    assert len(rows) == len(class_) + 1
    again = cli(*args)                                   # nothing new: nothing graded again
    assert "(0 in this run" in again.stdout
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    assert not leftovers, leftovers


def test_unsafe_no_sandbox_is_explicit_and_said(tmp_path):
    write_class(str(tmp_path / "in"), {"eve": mixed_class()["grades.csv"]}, layout="flat")
    proc = cli("batch", str(tmp_path / "in"), "--assignment", A, "--out", str(tmp_path / "out"),
               "--unsafe-no-sandbox")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results" / "eve" / "results.json").read_text())
    assert "without a sandbox" in results["output"].lower()
