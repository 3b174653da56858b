"""The class report's numbers from a class whose every attempt is known: pass rates on the latest attempts,
attempts until a pass, failure messages grouped when they differ only in numbers (with an example student),
who has not submitted and who is stuck, attempts per day in the deadline's zone; the page and CSV files say the
same."""
import csv

from autograder.classroom import analytics
from autograder.classroom.class_report import render_html, write_csv


def _results(passed, outputs=None):
    """results.json of an attempt: ``passed`` {task: bool}, ``outputs`` {task: failure text}."""
    tests = [{"name": f"{task}: The {task} task", "number": task, "score": 2.0 if ok else 0.0, "max_score": 2.0,
              "output": "" if ok else (outputs or {}).get(task, f"Task {task} failed:\n- wrong")}
             for task, ok in passed.items()]
    return {"score": sum(t["score"] for t in tests), "tests": tests}


def _attempt(student, hour, passed, outputs=None):
    return {"student": student, "received": f"2027-01-1{hour // 24}T{hour % 24:02d}:00:00+00:00", "status": "done",
            "results": _results(passed, outputs)}


def _class():
    """ann passes all at once; ben fixes `fit` on his third try; cat tries five times and never fits; dan's only
    attempt failed to grade (the machine's fault); eve (on the roster) never submits."""
    off = {"fit": "Task fit failed:\n- the loss after 3 epochs is 0.912, expected below 0.5 (atol 1e-6)"}
    off2 = {"fit": "Task fit failed:\n- the loss after 5 epochs is 1.25, expected below 0.5 (atol 1e-6)"}
    shape = {"data": "Task data failed:\n- y has shape (100,), expected (100, 1)"}
    return [
        _attempt("ann", 1, {"data": True, "fit": True}),
        _attempt("ben", 2, {"data": False, "fit": False}, {**shape, **off}),
        _attempt("ben", 3, {"data": True, "fit": False}, off2),
        _attempt("ben", 30, {"data": True, "fit": True}),
        *[_attempt("cat", 4 + i, {"data": True, "fit": False}, off if i % 2 else off2) for i in range(5)],
        {"student": "dan", "received": "2027-01-10T09:00:00+00:00", "status": "failed", "results": None},
    ]


def test_pass_rates_and_attempts_to_pass_count_each_students_history():
    tasks = analytics.task_table(_class())
    assert (tasks["data"]["passed"], tasks["data"]["students"], tasks["data"]["pass_rate"]) == (3, 3, 1.0)
    assert (tasks["fit"]["passed"], tasks["fit"]["students"], tasks["fit"]["pass_rate"]) == (2, 3, 0.667)
    assert tasks["fit"]["mean_attempts_to_pass"] == 2.0            # ann 1, ben 3; cat never
    assert tasks["data"]["mean_attempts_to_pass"] == round((1 + 2 + 1) / 3, 2)


def test_messages_that_differ_only_in_numbers_count_as_one():
    assert analytics.failure_shape("- y has shape (100,), expected (100, 1); 1e-6, -2.5E+3, 1_000.") == \
        "y has shape (#,), expected (#, #); #, #, #."
    fit = analytics.task_table(_class())["fit"]["failures"]
    assert len(fit) == 1 and fit[0]["count"] == 2 + 5            # ben twice, cat five times, numbers aside
    assert fit[0]["message"] == "the loss after # epochs is #, expected below # (atol #)"
    assert fit[0]["example_student"] == "ben" and "0.912" in fit[0]["example"]


def test_who_has_not_submitted_and_who_is_stuck():
    data = analytics.summary(_class(), roster=["ann", "ben", "cat", "dan", "eve"])
    assert data["not_submitted"] == ["eve"] and data["stuck"] == ["cat"]
    assert data["scores"] == [2.0, 4.0, 4.0] and data["max_score"] == 4.0
    rows = {row["student"]: row for row in data["students"]}
    assert rows["dan"]["submitted"] and rows["dan"]["latest_score"] is None and rows["ben"]["attempts"] == 3


def test_attempts_per_day_count_in_the_deadlines_zone_and_show_empty_days():
    from datetime import datetime, timedelta, timezone

    attempts = _class()
    assert analytics.per_day(attempts) == [{"day": "2027-01-10", "submissions": 9},
                                           {"day": "2027-01-11", "submissions": 1}]
    # 8 hours west of UTC, ann's, ben's first two and four of cat's attempts were made the evening before
    west = datetime(2027, 1, 12, 23, 59, tzinfo=timezone(timedelta(hours=-8)))
    assert analytics.per_day(attempts, due=west) == [{"day": "2027-01-09", "submissions": 7},
                                                     {"day": "2027-01-10", "submissions": 3}]
    later = dict(attempts[0], received="2027-01-13T12:00:00+00:00")
    assert [d["submissions"] for d in analytics.per_day(attempts + [later])] == [9, 1, 0, 1]
    assert analytics.per_day([]) == []


def test_the_page_and_the_csv_files_say_the_same(tmp_path):
    from datetime import datetime, timezone

    due = datetime(2027, 1, 10, 6, tzinfo=timezone.utc)
    data = analytics.summary(_class(), roster=["ann", "ben", "cat", "dan", "eve"], due=due)
    page = render_html("09-example", data)
    assert page.count("<svg") == 3 and "<script" not in page
    assert "66.7%" not in page and "67% (2/3)" in page and "eve" in page and "Stuck" in page
    assert "the loss after # epochs is #, expected below # (atol #)" in page
    assert f"{data['late']} submission(s) after it" in page and data["late"] == 4     # ben's last, cat's last
                                                                                     # two, dan's
    assert {row["student"] for row in data["students"] if row["late"]} == {"ben", "cat", "dan"}
    write_csv(tmp_path, data)
    with open(tmp_path / "tasks.csv", newline="") as handle:
        tasks = {row["task"]: row for row in csv.DictReader(handle)}
    assert tasks["fit"]["pass_rate"] == "0.667" and tasks["fit"]["mean_attempts_to_pass"] == "2.0"
    with open(tmp_path / "failures.csv", newline="") as handle:
        assert [(row["task"], row["count"]) for row in csv.DictReader(handle)] == [("data", "1"), ("fit", "7")]
    with open(tmp_path / "days.csv", newline="") as handle:
        assert [(row["day"], row["submissions"]) for row in csv.DictReader(handle)] == [("2027-01-10", "9"),
                                                                                       ("2027-01-11", "1")]
    assert "Submissions over time (days in UTC)" in page
