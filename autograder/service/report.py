"""The class report's data: every attempt of an assignment, from the grading service's database (where the
course runs it) and from nbgrader's submitted folder with the class grading's reports (``python -m autograder
autograde``), and the class roster.

    python -m autograder report ASSIGNMENT [--html report.html] [--csv DIR] [--db URL]
"""
from autograder.classroom import analytics
from autograder.classroom.class_report import class_attempts
from autograder.service import store


def attempts(course_dir, assignment, engine=None):
    """The attempts of ``assignment``, oldest first: the service's submissions and the handed-in notebooks."""
    found = store.class_submissions(engine, assignment) if engine is not None else []
    for row in found:
        row["source"] = "service"
    return sorted(found + class_attempts(course_dir, assignment), key=analytics.received)


def roster(course_dir, engine=None):
    """Every student the course knows: the service's and those in nbgrader's gradebook."""
    known = set(store.students(engine)) if engine is not None else set()
    return sorted(known.union(store.gradebook_ids(course_dir)))


def class_summary(course_dir, assignment, engine=None, settings=None):
    """analytics.summary of ``assignment`` over the service's and the handed-in attempts, with ``"source"``: where
    they come from, in words."""
    due = settings.due_date(assignment) if settings is not None else None
    rows = attempts(course_dir, assignment, engine)
    data = analytics.summary(rows, roster(course_dir, engine), due)
    data["source"] = sources(rows, engine is not None)
    return data


def sources(rows, with_service):
    """Where the attempts ``rows`` come from, in words."""
    said = []
    if with_service:
        said.append(f"the grading service ({sum(row['source'] == 'service' for row in rows)} submission(s))")
    handed = [row for row in rows if row["source"] == "class grading"]
    if handed:
        graded = sum(row["status"] == "done" for row in handed)
        said.append(f"nbgrader's submitted folder ({len(handed)} notebook(s), {graded} graded by the class grading)")
    return "From " + " and ".join(said) + "." if said else "No submissions yet."
