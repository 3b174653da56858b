"""Runs an assignment's pytest graders against a student and collects one outcome per grader."""
import os
from dataclasses import dataclass

import pytest

from autograder import PACKAGE_DIR
from autograder.sandbox.student import StudentFailure

GRADERS_DIR = os.path.join(PACKAGE_DIR, "graders")
GRADING_INI = os.path.join(GRADERS_DIR, "grading.ini")


class GraderError(RuntimeError):
    """The graders themselves could not run (a fault of the course, not of the submission)."""


@dataclass
class GraderOutcome:
    """One grader's result: which task, whether it passed, the student-facing message."""

    nodeid: str
    task_id: str
    passed: bool
    skipped: bool
    message: str


def describe_failure(excinfo):
    """A student-facing message for a grader's exception, without tracebacks or hidden code."""
    exc = excinfo.value
    if isinstance(exc, StudentFailure) or type(exc).__name__ in ("GradingFailure", "StudentFailure"):
        return str(exc)
    if isinstance(exc, AssertionError):
        text = str(exc).strip().splitlines()
        return text[0] if text else "A check of this task failed."
    if isinstance(exc, FileNotFoundError):
        # raised while the judge loads the course's own files (data sets): never the student's fault
        return ("A course file needed to grade this task is missing on the grading machine. This is a fault "
                "of the course, not of your work: tell the staff (your code was not judged for this task).")
    return (f"This task could not be checked: {type(exc).__name__}"
            f"{': ' + str(exc)[:200] if str(exc) else ''}. Check that your functions return what the "
            f"instructions describe.")


class Collector:
    """pytest plugin: hands the student to the graders and records each grader's outcome."""

    def __init__(self, student, task_ids):
        self.student = student
        self.task_ids = set(task_ids)
        self.outcomes = []

    def pytest_configure(self, config):
        config._autograder_student = self.student

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        result = yield
        report = result.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            tasks = [m.name for m in item.iter_markers() if m.name in self.task_ids] or ["(no task)"]
            message = describe_failure(call.excinfo) if report.failed and call.excinfo else ""
            for task_id in tasks:
                self.outcomes.append(GraderOutcome(item.nodeid, task_id, report.passed or report.skipped,
                                                   report.skipped, message))


def run_graders(assignment, student, task_ids=None):
    """Run the graders of ``assignment`` (optionally only some tasks) against ``student``."""
    wanted = list(task_ids) if task_ids else [t.id for t in assignment.tasks]
    collector = Collector(student, [t.id for t in assignment.tasks])
    args = [assignment.path, "-c", GRADING_INI, "--rootdir", GRADERS_DIR, "-p", "no:cacheprovider", "-p", "no:terminal", "--assert=plain", "-m", " or ".join(wanted)]
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        code = pytest.main(args, plugins=[collector])
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) or (
            code == pytest.ExitCode.INTERRUPTED and not collector.outcomes):
        raise GraderError(f"the graders of {assignment.id} could not run (pytest exit code {int(code)})")
    return collector.outcomes
