"""Grade a folder of submissions: one notebook per student, a results.json each and a grades CSV."""
import csv
import os

from autograder.engine import grade_notebook


def find_submissions(folder):
    """{student: notebook path}: ``folder/<student>/*.ipynb`` or ``folder/<student>.ipynb``."""
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            notebooks = sorted(f for f in os.listdir(path) if f.endswith(".ipynb") and not f.startswith("."))
            if notebooks:
                found[name] = os.path.join(path, notebooks[0])
        elif name.endswith(".ipynb"):
            found[name[:-len(".ipynb")]] = path
    return found


def grade_folder(folder, assignment, out):
    """Grade every submission; write out/<student>/results.json and out/grades.csv; returns 0."""
    submissions = find_submissions(folder)
    os.makedirs(out, exist_ok=True)
    rows = []
    for student, path in submissions.items():
        report = grade_notebook(path, assignment=assignment)
        report.write(os.path.join(out, student, "results.json"))
        row = {"student": student, "score": report.score, "max_score": report.max_score,
               "error": report.error or ""}
        row.update({t.id: t.score for t in report.tasks})
        rows.append(row)
        print(f"{student}: {report.score:g}/{report.max_score:g}" + (f" ({report.error})" if report.error else ""))
    fields = ["student", "score", "max_score"] + sorted({k for r in rows for k in r} - {"student", "score",
                                                                                        "max_score", "error"})
    with open(os.path.join(out, "grades.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields + ["error"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} submissions graded; grades in {os.path.join(out, 'grades.csv')}")
    return 0
