"""The class report an instructor reads: one HTML page (plots as inline SVG, readable without JavaScript) and
the same numbers as CSV files.

    class_attempts(root, assignment)   the submitted notebooks, with the reports kept for them, as attempts
    render_html(assignment, data)      the page, from ``analytics.summary``'s data
    write_csv(folder, data)            students.csv, tasks.csv, failures.csv, days.csv
"""
import csv
import html
import io
import os
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time

import matplotlib

from autograder.classroom import analytics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } td, th { border: 1px solid #ddd; padding: 0.3em 0.6em;
vertical-align: top; text-align: left; } th { background: #f4f4f4; } td.n { text-align: right; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plots figure { margin: 0; } figcaption { color: #555; }
.low { color: #a00; font-weight: 600; } code, pre { background: #f6f6f6; } pre { white-space: pre-wrap;
margin: 0; font-size: 0.85em; } .muted { color: #666; }
"""


def class_attempts(root, assignment):
    """[{"student", "received", "status", "results"}] of each notebook under nbgrader's submitted/ folder, with the
    report the class grading (or the grading service) keeps for its code: status "done", or "not graded" where
    none is kept yet; handed in at nbgrader's timestamp."""
    from autograder.classroom.autograde import STATE, _submissions
    from autograder.classroom.gradings import ResultsCache, content_key, read_submission

    cache, attempts = ResultsCache(os.path.join(root, STATE, assignment, "results")), []
    for student, notebooks in _submissions(root, assignment).items():
        for path in notebooks:
            data, _ = read_submission(path)
            report = cache.get(content_key(data, assignment)) if data is not None else None
            attempts.append({"student": student, "received": _handed_in(root, student, assignment),
                             "status": "done" if report else "not graded", "source": "class grading",
                             "results": report.to_gradescope() if report else None})
    return sorted(attempts, key=lambda a: a["received"])


def _handed_in(root, student, assignment):
    """When ``student`` handed ``assignment`` in: nbgrader's timestamp.txt, else the folder's time (ISO, UTC)."""
    folder = os.path.join(root, "submitted", student, assignment)
    try:
        with open(os.path.join(folder, "timestamp.txt"), encoding="utf-8") as handle:
            from dateutil.parser import parse

            moment = parse(handle.read().strip())
    except (OSError, ValueError, OverflowError):
        try:
            moment = datetime.fromtimestamp(os.path.getmtime(folder), timezone.utc)
        except OSError:
            moment = datetime.now(timezone.utc)
    return analytics.aware(moment).isoformat()


def _svg(figure):
    """The figure as an inline SVG element (no XML header), closed afterwards."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def score_plot(scores, max_score):
    """A histogram of the latest scores, one bar per point."""
    figure, axes = plt.subplots(figsize=(5.5, 3.2))
    top = int(max_score or max(scores or [1]))
    axes.hist(scores, bins=[x - 0.5 for x in range(top + 2)], color="#4878a8", edgecolor="white")
    axes.set(xlabel=f"points (of {top})", ylabel="students", title="Latest score per student")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _svg(figure)


def pass_rate_plot(tasks):
    """Horizontal bars: each task's pass rate on the students' latest attempts."""
    names = list(tasks)
    rates = [100 * (tasks[t]["pass_rate"] or 0) for t in names]
    figure, axes = plt.subplots(figsize=(5.5, 0.35 * len(names) + 1.2))
    axes.barh(names[::-1], rates[::-1], color=["#c0504d" if r < 50 else "#4878a8" for r in rates[::-1]])
    axes.set(xlim=(0, 100), xlabel="% of students passing (latest attempt)", title="Pass rate per task")
    return _svg(figure)


def timeline_plot(times, per_day, due):
    """Submissions over time: a bar per day (in the due date's zone, else UTC), the running total as a line, and the
    due date as a dashed line."""
    due = datetime.fromisoformat(due) if due else None
    zone = analytics.day_zone(due)
    moments = sorted(datetime.fromisoformat(t) for t in times)
    figure, axes = plt.subplots(figsize=(5.5, 3.2))
    starts = [datetime.combine(date.fromisoformat(d["day"]), dt_time(0), tzinfo=zone) for d in per_day]
    counts = [d["submissions"] for d in per_day]
    axes.bar(starts, counts, width=timedelta(days=1), align="edge", color="#b9cde0", edgecolor="white",
             label="that day")
    headroom = 1.35                     # the legend's row above the data
    axes.set(ylabel="submissions that day", ylim=(0, max(counts + [1]) * headroom))
    axes.yaxis.get_major_locator().set_params(integer=True)
    total = axes.twinx()
    total.step(moments, range(1, len(moments) + 1), where="post", color="#4878a8", label="so far")
    total.set(ylabel="submissions so far", ylim=(0, max(len(moments), 1) * headroom))
    if due:
        total.axvline(due, color="#c0504d", linestyle="--", label="due")
    lines = axes.get_legend_handles_labels()[0] + total.get_legend_handles_labels()[0]
    total.legend(lines, [line.get_label() for line in lines], loc="upper left", ncol=3, frameon=False)
    axes.xaxis_date(zone)
    axes.set_title(f"Submissions over time (days in {zone.tzname(None)})")
    figure.autofmt_xdate()
    return _svg(figure)


def when(moment):
    """A time (datetime or ISO 8601) as people read it, in its own zone: 2027-01-15 23:59 CET."""
    moment = analytics.aware(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"


def _cell(value, numeric=False):
    text = "–" if value is None else html.escape(str(value))
    return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"


def _task_rows(tasks):
    rows = []
    for task, row in tasks.items():
        rate = row["pass_rate"]
        shown = "–" if rate is None else f"{100 * rate:.0f}%"
        low = ' class="n low"' if rate is not None and rate < 0.5 else ' class="n"'
        rows.append(f'<tr><td><a href="#task-{html.escape(task)}">{html.escape(row["title"])}</a></td>'
                    f'{_cell(row["max_score"], True)}<td{low}>{shown} ({row["passed"]}/{row["students"]})</td>'
                    f'{_cell(row["mean_attempts_to_pass"], True)}</tr>')
    return "\n".join(rows)


def _failure_sections(tasks):
    parts = []
    for task, row in tasks.items():
        if not row["failures"]:
            continue
        items = "\n".join(
            f'<tr>{_cell(f["count"], True)}<td>{html.escape(f["message"])}</td><td>{html.escape(f["example_student"])}'
            f'<pre>{html.escape(f["example"])}</pre></td></tr>' for f in row["failures"])
        parts.append(f'<h3 id="task-{html.escape(task)}">{html.escape(row["title"])}</h3>\n<table><tr><th>times'
                     f'</th><th>message (numbers as #)</th><th>an example</th></tr>\n{items}</table>')
    return "\n".join(parts) or '<p class="muted">No failures.</p>'


def _student_rows(students):
    rows = []
    for row in students:
        flags = ", ".join(flag for flag, on in (("not submitted", not row["submitted"]), ("stuck", row["stuck"]),
                                                 ("late", row["late"])) if on)
        rows.append(f'<tr>{_cell(row["student"])}{_cell(row["attempts"], True)}{_cell(row["latest_score"], True)}'
                    f'{_cell(row["best_score"], True)}{_cell(when(row["last"]) if row["last"] else None)}{_cell(flags)}</tr>')
    return "\n".join(rows)


def render_html(assignment, data):
    """The class report of ``assignment`` as one HTML page (``data``: analytics.summary, with an optional
    ``"source"`` saying where its attempts come from)."""
    scores, tasks = data["scores"], data["tasks"]
    mean = f"{sum(scores) / len(scores):.1f}" if scores else "–"
    plots = [score_plot(scores, data["max_score"]), pass_rate_plot(tasks)] if scores else []
    if data["times"]:
        plots.append(timeline_plot(data["times"], data["per_day"], data["due"]))
    figures = "\n".join(f"<figure>{svg}</figure>" for svg in plots)
    due = f"due {when(data['due'])}, {data['late']} submission(s) after it" if data["due"] else "no due date"
    attention = []
    if data["not_submitted"]:
        attention.append(f"<p><b>Not submitted ({len(data['not_submitted'])}):</b> "
                         f"{html.escape(', '.join(data['not_submitted']))}</p>")
    if data["stuck"]:
        attention.append(f"<p><b>Stuck</b> (many attempts, never full points) ({len(data['stuck'])}): "
                         f"{html.escape(', '.join(data['stuck']))}</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(assignment)}: class report</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(assignment)}: class report</h1>
<p>{len(scores)} student(s) graded, mean {mean} of {data['max_score'] or '–'} points; {data['attempts']} attempt(s);
{due}. <span class="muted">{html.escape(data.get("source", ""))}</span></p>
{''.join(attention) or '<p>Every student has submitted; nobody is stuck.</p>'}
<div class="plots">{figures}</div>
<h2>Tasks</h2>
<table><tr><th>task</th><th>points</th><th>passing (latest attempt)</th><th>mean attempts to pass</th></tr>
{_task_rows(tasks)}</table>
<h2>Most common failures per task</h2>
{_failure_sections(tasks)}
<h2>Students</h2>
<table><tr><th>student</th><th>attempts</th><th>latest</th><th>best</th><th>last attempt</th><th></th></tr>
{_student_rows(data['students'])}</table>
</body></html>
"""


def write_csv(folder, data):
    """students.csv, tasks.csv, failures.csv and days.csv in ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    tables = {
        "students.csv": (["student", "attempts", "latest_score", "best_score", "first", "last", "late", "stuck",
                          "submitted"], data["students"]),
        "tasks.csv": (["task", "title", "max_score", "students", "passed", "pass_rate", "mean_attempts_to_pass",
                       "median_attempts_to_pass"], [dict(row, task=task) for task, row in data["tasks"].items()]),
        "failures.csv": (["task", "count", "message", "example_student", "example"],
                         [dict(f, task=task) for task, row in data["tasks"].items() for f in row["failures"]]),
        "days.csv": (["day", "submissions"], data["per_day"]),
    }
    paths = []
    for name, (columns, rows) in tables.items():
        path = os.path.join(folder, name)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        paths.append(path)
    return paths
