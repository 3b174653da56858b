"""Grading one submission: notebook in, Report out. Student code runs only in the sandboxed child."""
import copy
import time

from autograder.judge.notebook import (NotebookError, check_notebook, declared_assignment, grade_ids,
                                 program_cells, read_notebook)
from autograder.judge.report import Report, TaskResult


class GradingError(Exception):
    """Grading could not run (bad notebook, unknown or mismatched assignment); the message says why."""


def load_submission(notebook):
    """A notebook dict from a path, a dict or an nbformat node."""
    if isinstance(notebook, (str, bytes)) or hasattr(notebook, "__fspath__"):
        return read_notebook(notebook)
    return check_notebook(copy.deepcopy(dict(notebook)))


def identify(nb, requested=None):
    """The assignment id to grade ``nb`` as, checking that the notebook belongs to it."""
    from autograder.judge.tasks import available_assignments, load_assignment

    known = available_assignments()
    declared = declared_assignment(nb)
    ids = {g for g in grade_ids(nb) if g}
    if requested is not None and requested not in known:
        raise GradingError(f"Unknown assignment {requested!r}. Known assignments: {', '.join(known)}.")
    if declared is not None and declared not in known:
        declared = None
    if requested and declared and requested != declared:
        raise GradingError(f"This notebook belongs to assignment {declared}, not {requested}: "
                           f"was the right file submitted?")
    if requested or declared:
        chosen = requested or declared
        if ids and not declared:
            own = {t.id for t in load_assignment(chosen).tasks}
            if not ids & own:
                raise GradingError(f"This notebook's graded cells ({', '.join(sorted(ids))}) are not those of "
                                   f"assignment {chosen}: was the right file submitted?")
        return chosen
    matches = [a for a in known if ids & {t.id for t in load_assignment(a).tasks}]
    if len(matches) == 1:
        return matches[0]
    raise GradingError("Cannot tell which assignment this notebook is: pass --assignment "
                       f"(one of {', '.join(known)}).")


def _startup_messages(sandbox, nb):
    startup = sandbox.startup
    if startup is None:
        return []
    messages = []
    for error in startup.cell_errors:
        line = f", line {error['line']}" if error.get("line") else ""
        messages.append(f"Note: cell {error['index']}{line} raised {error['type']}: {error['message']}")
    if startup.used:
        messages.append(f"Note: your notebook used {', '.join(startup.used)}; grading relies on nothing these can "
                        f"change in your process.")
    for number in startup.skipped_cells:
        messages.append(f"Note: cell {number} stopped or hung the Python process, so it was left out when "
                        f"grading the other tasks.")
    return messages


UNSAFE_WARNING = ("WARNING: this submission was graded WITHOUT a sandbox (--unsafe-no-sandbox): its code ran "
                  "with the grader's own rights and could have changed files, other results or this score.")


def grade_notebook(notebook, assignment=None, limits=None, task_ids=None, student=None):
    """Grade one submission and return a Report; never raises for problems of the submission."""
    from autograder.judge.budgets import probe_budgets
    from autograder.judge.tasks import load_assignment
    from autograder.sandbox.isolation import IsolationUnavailable
    from autograder.sandbox.student import Limits, SandboxStudent

    started = time.monotonic()
    report = Report()
    try:
        nb = load_submission(notebook)
        report.assignment = identify(nb, assignment)
    except (NotebookError, GradingError) as exc:
        report.error = str(exc)
        report.execution_time = time.monotonic() - started
        return report
    own_student = student is None
    if own_student:
        limits = limits or Limits()
        student = SandboxStudent(program_cells(nb), limits, assignment=report.assignment)
        student.budgets = probe_budgets(load_assignment(report.assignment), limits.call_timeout)
        try:
            student.open_box()
        except IsolationUnavailable as exc:
            report.error = f"Grading refused: {exc}"
            report.execution_time = time.monotonic() - started
            return report
        report.sandbox = student.protections
        if student.box.tier == "none":
            report.messages.append(UNSAFE_WARNING)
        student.start()                       # the notebook loads while the graders are imported
    from autograder.judge.runner import GraderError
    from autograder.sandbox.student import SandboxFault
    try:
        if own_student:
            student.start_budget()
        _grade(report, nb, student, task_ids)
        if getattr(student, "machine_fault", None):
            raise SandboxFault(student.machine_fault)
    except SandboxFault as exc:
        report.error = f"Grading could not run: {exc}. This is a fault of the grading machine; tell the staff."
        for task in report.tasks:
            task.score = 0.0
    except GraderError as exc:
        report.error = f"Grading could not run: {exc}. This is a fault of the course; tell the staff."
    except Exception as exc:  # noqa: BLE001 - never let one submission stop a class
        report.error = (f"Grading could not complete ({type(exc).__name__}). This is a fault of the course, "
                        f"not of the submission; tell the staff.")
    finally:
        if own_student:
            student.close()
    report.execution_time = time.monotonic() - started
    return report


def _shape_of(message):
    """A message with its numbers left out: two checks that fail the same way say it once."""
    import re
    return re.sub(r"[-+]?\d[\d.,_eE+-]*", "#", message)


def distinct(messages):
    """The messages in order, each said once (the same sentence with other numbers counts as said)."""
    seen, kept = set(), []
    for message in messages:
        shape = _shape_of(message)
        if shape not in seen:
            seen.add(shape)
            kept.append(message)
    return kept


def _grade(report, nb, student, task_ids):
    from autograder.judge.runner import run_graders
    from autograder.judge.tasks import load_assignment

    assignment = load_assignment(report.assignment)
    tasks = [t for t in assignment.tasks if not task_ids or t.id in task_ids]
    outcomes = run_graders(assignment, student, [t.id for t in tasks])
    present = set(grade_ids(nb))
    for task in tasks:
        result = TaskResult(task.id, task.title, float(task.points))
        mine = [o for o in outcomes if o.task_id == task.id]
        failures = [o.message for o in mine if not o.passed]
        if not mine:
            failures = ["No grader ran for this task (a fault of the course, not yours: tell the staff)."]
        result.score = float(task.points) if not failures else 0.0
        result.feedback = distinct(failures)
        if present and task.id not in present:
            report.messages.append(f"Note: the grade cell `{task.id}` was deleted from the notebook; the task "
                                   f"was graded from your code anyway.")
        report.tasks.append(result)
    if getattr(student, "startup", None) is not None:
        report.messages.extend(_startup_messages(student, nb))
