"""``autograder autograde``: killed with kill -9 at random moments, a re-run loses and duplicates nothing."""
import os
import sqlite3

import pytest

from tests.classes import A, TASKS, cli, gradebook_points, kill_repeatedly, left_behind, make_course, the_class


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun(tmp_path):
    students = the_class("alice", "bob", "carol", "Zoë Ünal")
    course, made = make_course(tmp_path / "course", students)
    moments = kill_repeatedly(["autograde", A, "--jobs", "2"], course, kills=5, seed=8, low=0.5, high=10.0)
    assert len(moments) >= 5, moments
    assert left_behind(course) == [], "a killed run left grading processes behind"
    proc = cli("autograde", A, "--jobs", "2", cwd=course)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Failed to grade: 0" in proc.stdout, proc.stdout
    expected = {"alice": 13, "bob": 9, "carol": 0, "Zoë Ünal": 9}
    for name, total in expected.items():
        points = gradebook_points(course, name)
        assert sorted(points) == sorted(TASKS) and sum(points.values()) == total, (name, points)
        assert os.path.isfile(os.path.join(course, "autograded", name, A, "datasets.ipynb"))
    with sqlite3.connect(os.path.join(course, "gradebook.db")) as db:
        counts = db.execute("SELECT COUNT(*) FROM grade GROUP BY notebook_id, cell_id").fetchall()
        assert len(counts) == len(TASKS) * len(students) and {c for (c,) in counts} == {1}
    again = cli("autograde", A, "--jobs", "2", cwd=course)        # nothing new: nothing graded again
    assert "(0 in this run, 4 unchanged" in again.stdout, again.stdout
    assert "gradebook" not in again.stderr                          # and nbgrader had nothing to write
