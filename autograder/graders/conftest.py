"""Gives graders their ``student``; registers one pytest marker per task id.

Run one gradable unit by hand: ``pytest autograder/graders/datasets -m regression_data
--notebook path/to/submission.ipynb`` (without --notebook, the assignment's source notebook is graded).
"""
import os
import sys

import pytest

from autograder.judge.tasks import all_task_ids


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="notebook whose code the graders judge")


def pytest_configure(config):
    for task_id, title in all_task_ids().items():
        config.addinivalue_line("markers", f"{task_id}: {title}")
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU")


def _package_assignment(request):
    """ASSIGNMENT of the lesson package whose checks are collected."""
    items = getattr(request.node, "items", None)
    package = sys.modules.get(items[0].module.__package__) if items else None
    return getattr(package, "ASSIGNMENT", None)


@pytest.fixture(scope="session")
def student(request):
    existing = getattr(request.config, "_autograder_student", None)
    if existing is not None:
        yield existing
        return
    from autograder.judge.notebook import declared_assignment, program_cells, read_notebook
    from autograder.sandbox.student import SandboxStudent
    from autograder.judge.tasks import lesson_name, load_assignment

    path = request.config.getoption("--notebook")
    if path is None:
        assignment = _package_assignment(request)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(root, "source", assignment, lesson_name(assignment) + ".ipynb")
        load_assignment(assignment)
    nb = read_notebook(path)
    assignment = declared_assignment(nb) or _package_assignment(request)
    sandbox = SandboxStudent(program_cells(nb), assignment=assignment)
    sandbox.start()
    yield sandbox
    sandbox.close()
