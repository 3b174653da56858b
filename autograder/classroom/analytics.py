"""What a class's attempts say: per student the latest score, per task the pass rate, the attempts it took to
pass and the most common failure messages (those that differ only in numbers counted as one), who has not
submitted and who is stuck, and how many attempts came each day.

An attempt is a dict ``{"student", "received" (ISO 8601), "status" ("done", "failed", ...), "results"
(results.json's dict, or None)}``: the grading service's submissions, or a notebook handed in through nbgrader
with the class grading's report of it. Attempts are given oldest first.
"""
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

STUCK_ATTEMPTS = 5          # this many attempts without full points: a student to talk to
NUMBER = re.compile(r"[-+]?\d+(?:[._,]\d+)*(?:[eE][-+]?\d+)?")      # 3, -0.912, 1e-6, 1_000, 2.5E+3


def aware(moment):
    """``moment`` with UTC as its zone where it has none (SQLite and nbgrader's gradebook give naive UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def received(attempt):
    """The aware moment an attempt arrived (naive ISO times are UTC)."""
    return aware(datetime.fromisoformat(attempt["received"]))


def graded(attempts):
    """The attempts that have results (graded, not failed or waiting)."""
    return [a for a in attempts if a.get("status", "done") == "done" and a.get("results")]


def latest(attempts):
    """{student: their latest graded attempt}."""
    found = {}
    for attempt in graded(attempts):
        found[attempt["student"]] = attempt
    return found


def max_score(attempts):
    """The assignment's total points (from any graded attempt), or None."""
    for attempt in graded(attempts):
        return sum(t["max_score"] for t in attempt["results"].get("tests", []))
    return None


def failure_shape(output):
    """A failure's first line (its feedback's first finding) with its numbers left out, so that the same mistake
    with other numbers counts once."""
    lines = [line.strip().lstrip("-").strip() for line in output.splitlines()]
    lines = [line for line in lines if line and not (line.startswith("Task ") and line.endswith("failed:"))]
    return NUMBER.sub("#", lines[0])[:300] if lines else ""


def task_table(attempts, most_common=5):
    """{task: {"title", "max_score", "students", "passed", "pass_rate", "mean_attempts_to_pass",
    "median_attempts_to_pass", "failures": [{"message", "count", "example_student", "example"}]}}: pass rates on
    each student's latest attempt, attempts counted up to a student's first pass, failures over all attempts."""
    titles, tries, passed_at, last = {}, defaultdict(Counter), defaultdict(dict), defaultdict(dict)
    failures, examples, points = defaultdict(Counter), {}, {}
    for attempt in graded(attempts):
        student = attempt["student"]
        for test in attempt["results"].get("tests", []):
            task = test.get("number") or test["name"]
            titles.setdefault(task, test["name"])
            points[task] = test["max_score"]
            tries[task][student] += 1
            ok = test["score"] >= test["max_score"]
            last[task][student] = ok
            if ok:
                passed_at[task].setdefault(student, tries[task][student])
            else:
                shape = failure_shape(test.get("output", "")) or "(no message)"
                failures[task][shape] += 1
                examples.setdefault((task, shape), (student, test.get("output", "").strip()[:600]))
    table = {}
    for task in titles:
        students, ok = len(last[task]), sum(last[task].values())
        needed = list(passed_at[task].values())
        table[task] = {
            "title": titles[task], "max_score": points[task], "students": students, "passed": ok,
            "pass_rate": round(ok / students, 3) if students else None,
            "mean_attempts_to_pass": round(float(statistics.mean(needed)), 2) if needed else None,
            "median_attempts_to_pass": statistics.median(needed) if needed else None,
            "failures": [{"message": shape, "count": count, "example_student": examples[task, shape][0],
                          "example": examples[task, shape][1]}
                         for shape, count in failures[task].most_common(most_common)],
        }
    return table


def students_table(attempts, roster=(), due=None):
    """[{"student", "attempts", "latest_score", "best_score", "first", "last", "late", "stuck", "submitted"}] for
    every student of ``roster`` or of the attempts, sorted by id (late: an attempt after ``due``)."""
    total = max_score(attempts)
    by_student = defaultdict(list)
    for attempt in attempts:
        by_student[attempt["student"]].append(attempt)
    rows = []
    for student in sorted(set(roster) | set(by_student)):
        mine = by_student.get(student, [])
        scores = [a["results"]["score"] for a in graded(mine)]
        full = total is not None and any(score >= total for score in scores)
        rows.append({
            "student": student, "attempts": len(mine), "submitted": bool(mine),
            "latest_score": scores[-1] if scores else None, "best_score": max(scores) if scores else None,
            "first": mine[0]["received"] if mine else None, "last": mine[-1]["received"] if mine else None,
            "late": due is not None and any(received(a) > due for a in mine),
            "stuck": len(mine) >= STUCK_ATTEMPTS and not full,
        })
    return rows


def day_zone(due=None):
    """The zone a class's days are counted in: the due date's (so a deadline at 23:59 closes its own day), else UTC."""
    return due.tzinfo if due is not None else timezone.utc


def per_day(attempts, due=None):
    """[{"day" (YYYY-MM-DD), "submissions"}] for every calendar day from the first attempt to the last, days without
    any counted as 0; days in ``day_zone(due)``."""
    zone = day_zone(due)
    counts = Counter(received(a).astimezone(zone).date() for a in attempts)
    if not counts:
        return []
    day, last, days = min(counts), max(counts), []
    while day <= last:
        days.append({"day": day.isoformat(), "submissions": counts[day]})
        day += timedelta(days=1)
    return days


def summary(attempts, roster=(), due=None):
    """Everything the class report shows, as plain data."""
    last = latest(attempts)
    total = max_score(attempts)
    students = students_table(attempts, roster, due)
    return {
        "max_score": total, "attempts": len(attempts), "graded": len(graded(attempts)),
        "scores": sorted(a["results"]["score"] for a in last.values()),
        "tasks": task_table(attempts), "students": students,
        "not_submitted": [row["student"] for row in students if not row["submitted"]],
        "stuck": [row["student"] for row in students if row["stuck"]],
        "times": [received(a).isoformat() for a in attempts], "per_day": per_day(attempts, due),
        "late": sum(1 for a in attempts if due is not None and received(a) > due),
        "due": due.isoformat() if due else None,
    }
