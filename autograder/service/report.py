"""The class report's data: every attempt of an assignment, from the grading service's database (where the
course runs it) and from nbgrader's submitted folder with the class grading's reports (``python -m autograder
autograde``), and the class roster.

    python -m autograder report ASSIGNMENT [--html report.html] [--csv DIR] [--db URL]
"""
import os

from autograder.classroom import analytics
from autograder.classroom.class_report import class_attempts
from autograder.service import store


def attempts(course_dir, assignment, engine=None, settings=None):
    """The attempts of ``assignment``, oldest first: the service's submissions and the class grading's."""
    found = []
    for row in store.class_submissions(engine, assignment) if engine is not None else []:
        row["source"] = "service"
        if settings is not None:
            row["late"] = settings.is_late(assignment, analytics.received(row))
        found.append(row)
    for row in class_attempts(course_dir, assignment):
        if settings is not None:
            row["late"] = settings.is_late(assignment, analytics.received(row))
        found.append(row)
    return sorted(found, key=analytics.received)


def roster(course_dir, engine=None):
    """Every student the course knows: the service's and those in nbgrader's gradebook."""
    known = set(store.students(engine)) if engine is not None else set()
    path = os.path.join(course_dir, "gradebook.db")
    if os.path.exists(path):
        from nbgrader.api import Gradebook

        with Gradebook("sqlite:///" + os.path.abspath(path)) as gradebook:
            known.update(student.id for student in gradebook.students)
    return sorted(known)


def class_summary(course_dir, assignment, engine=None, settings=None):
    """analytics.summary of ``assignment`` over the service's and the class grading's attempts."""
    due = settings.due_date(assignment) if settings is not None else None
    return analytics.summary(attempts(course_dir, assignment, engine, settings), roster(course_dir, engine), due)


def sources(course_dir, assignment, engine=None):
    """Where the report's numbers come from, in words."""
    said = []
    if engine is not None:
        said.append(f"the grading service ({len(store.class_submissions(engine, assignment))} submission(s))")
    handed = class_attempts(course_dir, assignment)
    if handed:
        graded = sum(a["status"] == "done" for a in handed)
        said.append(f"nbgrader's submitted folder ({len(handed)} notebook(s), {graded} graded by the class grading)")
    return "From " + " and ".join(said) + "." if said else "No submissions yet."
