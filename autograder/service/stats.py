"""What an instructor reads of a class's submissions to the service: the latest per student, and per task the
pass rate, the attempts it took to pass and the most common failure messages."""
import re
import statistics
from collections import Counter


def latest_per_student(submissions):
    """{student: the latest graded submission ({"id", "status", "received", "score"})} of a class."""
    latest = {}
    for row in submissions:                    # in arrival order: later ones replace earlier ones
        if row["status"] in ("done", "failed"):
            latest[row["student"]] = {"id": row["id"], "status": row["status"], "received": row["received"],
                                      "score": (row["results"] or {}).get("score")}
    return latest


def _tests(row):
    return (row["results"] or {}).get("tests", []) if row["status"] == "done" else []


def failure_shape(output):
    """A failure message with its numbers left out, so that the same mistake with other numbers counts once."""
    line = next((part.strip("- ").strip() for part in output.splitlines() if part.strip().startswith("-")), output)
    return re.sub(r"[-+]?\d[\d.,_eE+-]*", "#", line)[:300]


def task_stats(submissions, most_common=5):
    """{task: {"students", "passed", "pass_rate", "median_attempts_to_pass", "failures": [[message, count]]}}
    over the graded submissions of a class (pass rate on each student's latest submission)."""
    tasks = {}
    attempts = {}
    for row in submissions:
        for test in _tests(row):
            name = test.get("number") or test["name"]          # the task id
            entry = tasks.setdefault(name, {"failures": Counter(), "tries": {}, "passed_at": {}})
            tries = entry["tries"][row["student"]] = entry["tries"].get(row["student"], 0) + 1
            if test["score"] >= test["max_score"]:
                entry["passed_at"].setdefault(row["student"], tries)
            else:
                entry["failures"][failure_shape(test.get("output", ""))] += 1
            attempts.setdefault(name, {})[row["student"]] = test["score"] >= test["max_score"]
    result = {}
    for name, entry in tasks.items():
        latest = attempts[name]
        passed = sum(latest.values())
        result[name] = {
            "students": len(latest), "passed": passed, "pass_rate": round(passed / len(latest), 3),
            "median_attempts_to_pass": (statistics.median(entry["passed_at"].values())
                                        if entry["passed_at"] else None),
            "failures": [[message, count] for message, count in entry["failures"].most_common(most_common)],
        }
    return result
