"""Grade a folder of submissions: a results.json per student and a grades CSV, resumable and in parallel.

Layouts found (``folder`` is what ``batch`` is given):

- nbgrader's: ``folder/<student>/<assignment>/*.ipynb`` (``folder`` is nbgrader's ``submitted/``);
- ``folder/<student>/*.ipynb``;
- ``folder/<student>.ipynb``.

Output: ``out/results/<student>/results.json`` (Gradescope's format), ``out/results/<student>/report.json``
(the full report and the submission's content key) and ``out/grades.csv`` (one row per student, tasks in
the notebook's order). Student names are data: any name a folder or file can have works. A re-run into
the same ``out`` keeps earlier students and skips every submission graded before and unchanged since.
"""
import csv
import io
import json
import os
import sys

from autograder.classroom.gradings import Job, Summary, content_key, read_submission, remove_stale_temporaries, run_gradings
from autograder.judge.report import Report, write_json_atomic

LAYOUTS = ("{folder}/<student>/{assignment}/*.ipynb (nbgrader's submitted/ layout)",
           "{folder}/<student>/*.ipynb", "{folder}/<student>.ipynb")
RESULTS = "results"
CSV_NAME = "grades.csv"


def _notebooks(folder):
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names
            if n.endswith(".ipynb") and not n.startswith(".") and os.path.isfile(os.path.join(folder, n))]


def _pick(notebooks, assignment):
    """The notebook of the assignment's lesson if present, else the first by name."""
    from autograder.judge.tasks import lesson_name

    try:
        wanted = lesson_name(assignment) + ".ipynb"
    except IndexError:
        wanted = None
    for path in notebooks:
        if os.path.basename(path) == wanted:
            return path
    return notebooks[0]


def find_submissions(folder, assignment=None):
    """{student: notebook path} in any of the layouts above (a student's folder wins over a file)."""
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if os.path.islink(path):
            found[name[:-len(".ipynb")] if name.endswith(".ipynb") else name] = path   # refused when read
        elif os.path.isdir(path):
            inner = os.path.join(path, assignment) if assignment else None
            notebooks = _notebooks(inner) if inner and os.path.isdir(inner) else _notebooks(path)
            if notebooks:
                found[name] = _pick(notebooks, assignment)
        elif name.endswith(".ipynb") and os.path.isfile(path):
            found.setdefault(name[:-len(".ipynb")], path)
    return found


def _student_dir(out, student):
    return os.path.join(out, RESULTS, student)


def _load_done(out):
    """{student: (key, Report)} of every student graded into ``out`` before."""
    done = {}
    base = os.path.join(out, RESULTS)
    try:
        names = os.listdir(base)
    except OSError:
        return done
    for name in names:
        try:
            with open(os.path.join(base, name, "report.json"), encoding="utf-8") as handle:
                data = json.load(handle)
            done[data["student"]] = (data["key"], Report.from_dict(data["report"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return done


def _record(out, student, key, report):
    """Write the student's results.json, then report.json (the mark of a finished grading)."""
    folder = _student_dir(out, student)
    report.write(os.path.join(folder, "results.json"))
    write_json_atomic(os.path.join(folder, "report.json"),
                      {"student": student, "key": key, "report": report.to_dict()})


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(path, assignment, reports):
    """Rewrite the grades CSV atomically: student, score, max_score, one column per task in order, error."""
    from autograder.judge.tasks import load_assignment

    try:
        tasks = load_assignment(assignment).tasks
        order, total = [t.id for t in tasks], float(sum(t.points for t in tasks))
    except Exception:  # noqa: BLE001 - unknown assignment: columns from the reports
        order, total = [], 0.0
    seen = order + [t.id for r in reports.values() for t in r.tasks if t.id not in order]
    columns = list(dict.fromkeys(seen))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "score", "max_score", *columns, "error"])
    for student in sorted(reports):
        report = reports[student]
        scores = report.scores()
        row = [student, report.score, report.max_score if report.tasks else total,
               *[scores.get(c, "") for c in columns], report.error or ""]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{CSV_NAME}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def grade_folder(folder, assignment, out, jobs=None, force=False, scheduler=None, limits=None):
    """Grade every submission under ``folder`` into ``out``; returns the exit status."""
    if not os.path.isdir(folder):
        print(f"error: {folder} is not a folder.", file=sys.stderr)
        return 2
    submissions = find_submissions(folder, assignment)
    if not submissions:
        layouts = "\n".join("  " + layout.format(folder=folder.rstrip("/"), assignment=assignment)
                            for layout in LAYOUTS)
        print(f"error: no submissions found. Looked for notebooks in these layouts:\n{layouts}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    remove_stale_temporaries(out)
    csv_path = os.path.join(out, CSV_NAME)
    done = _load_done(out)
    reports = {student: report for student, (_, report) in done.items()}
    summary = Summary(assignment)
    todo = []
    for student, path in submissions.items():
        data, reason = read_submission(path)
        if data is None:
            report = Report(assignment=assignment, error=f"{os.path.basename(path)}: {reason}.")
            _record(out, student, "", report)
            reports[student] = report
            summary.failed[student] = reason
            continue
        key = content_key(data, assignment)
        earlier = done.get(student)
        if not force and earlier and earlier[0] == key and not earlier[1].error:
            summary.graded[student] = earlier[1]
            continue
        todo.append(Job(student, student, data, os.path.basename(path), key=key))
    if not todo or not os.path.exists(csv_path):
        write_csv(csv_path, assignment, reports)
    for outcome in run_gradings(todo, assignment, jobs, scheduler, limits, desc=f"batch {assignment}"):
        student, report = outcome.job.id, outcome.report
        if report.assignment is None:
            report.assignment = assignment
        _record(out, student, outcome.job.key, report)
        reports[student] = report
        summary.seconds[student] = report.execution_time
        if report.error:
            summary.failed[student] = report.error
        else:
            summary.graded[student] = report
            summary.fresh.add(student)
        write_csv(csv_path, assignment, reports)
        print(f"{student}: {report.score:g}/{report.max_score:g}" + (f" ({report.error})" if report.error else ""),
              flush=True)
    for line in summary.lines():
        print(line)
    print(f"Grades of {len(reports)} student(s) in {csv_path}")
    return summary.exit_status()          # the reasons of any failure are listed above
