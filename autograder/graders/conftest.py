"""Gives graders their ``student``; registers one pytest marker per task id.

Run one gradable unit by hand: ``pytest autograder/graders/test_datasets.py -m regression_data
--notebook path/to/submission.ipynb`` (without --notebook, the assignment's source notebook is graded).
"""
import os

import pytest

from autograder.judge.tasks import all_task_ids


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="notebook whose code the graders judge")


def pytest_configure(config):
    for task_id, title in all_task_ids().items():
        config.addinivalue_line("markers", f"{task_id}: {title}")
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU")


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
        module = request.node.items[0].module if getattr(request.node, "items", None) else None
        assignment = getattr(module, "ASSIGNMENT", None)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(root, "source", assignment, lesson_name(assignment) + ".ipynb")
        load_assignment(assignment)
    nb = read_notebook(path)
    module = request.node.items[0].module if getattr(request.node, "items", None) else None
    assignment = declared_assignment(nb) or getattr(module, "ASSIGNMENT", None)
    sandbox = SandboxStudent(program_cells(nb), assignment=assignment)
    sandbox.start()
    yield sandbox
    sandbox.close()
