"""Every requirement a task's instructions state is enforced by a grader, or says why it is not.

Each lesson's grader package holds ``CONTRACT = {task_id: {requirement: coverage}}`` where ``requirement`` is a
sentence of the task's instructions (a shape, dtype, return type, exact size, fixed hyperparameter,
argument that must be used, mode, device or edge case) and ``coverage`` is the name of a grader (or a
list of names) marked with that task, or ``"not enforced: <reason>"``.
"""
import inspect

import pytest

from autograder.judge.tasks import available_assignments, load_assignment

NOT_ENFORCED = "not enforced: "


def _graders_of(assignment, task_id):
    """Names of the package's test functions that carry the pytest marker ``task_id``."""
    names = set()
    for module in assignment.grader_modules():
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if (name.startswith("test_") and fn.__module__ == module.__name__
                    and any(m.name == task_id for m in getattr(fn, "pytestmark", []))):
                names.add(name)
    return names


@pytest.mark.parametrize("assignment_id", available_assignments())
def test_contract_table_is_complete(assignment_id):
    assignment = load_assignment(assignment_id)
    contract = getattr(assignment.module, "CONTRACT", None)
    assert isinstance(contract, dict), f"{assignment.module.__name__} has no CONTRACT table"
    task_ids = [t.id for t in assignment.tasks]
    assert set(contract) == set(task_ids), f"CONTRACT tasks {sorted(contract)} != TASKS {task_ids}"
    for task_id in task_ids:
        requirements = contract[task_id]
        assert requirements, f"{task_id}: no requirement listed"
        graders = _graders_of(assignment, task_id)
        assert graders, f"{task_id}: no grader carries the marker"
        used = set()
        for requirement, coverage in requirements.items():
            if isinstance(coverage, str) and coverage.startswith(NOT_ENFORCED):
                assert len(coverage) > len(NOT_ENFORCED) + 15, f"{task_id}: {requirement!r} needs a real reason"
                continue
            names = [coverage] if isinstance(coverage, str) else list(coverage)
            assert names, f"{task_id}: {requirement!r} names no grader"
            for name in names:
                assert name in graders, f"{task_id}: {requirement!r} names {name!r}, not a grader of this task"
            used.update(names)
        assert graders <= used, f"{task_id}: graders {sorted(graders - used)} are not in the CONTRACT table"


@pytest.mark.parametrize("assignment_id", available_assignments())
def test_every_check_carries_the_marker_of_its_files_task(assignment_id):
    """A check (``test_*`` function, not a fixture) in ``test_<task>.py`` is marked with that task: an unmarked
    one would never run in a grading, and a helper named ``test_*`` would run as a check of nothing."""
    import ast
    assignment = load_assignment(assignment_id)
    task_ids = {t.id for t in assignment.tasks}
    wrong = []
    for module in assignment.grader_modules():
        file_task = module.__name__.rsplit(".", 1)[1][len("test_"):]
        assert file_task in task_ids, f"{module.__name__}: no task {file_task!r} in TASKS"
        with open(module.__file__, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any("fixture" in d for d in decorators):
                continue
            if f"pytest.mark.{file_task}" not in decorators:
                wrong.append(f"{module.__name__}.{node.name}")
    assert not wrong, f"checks without their file's task marker: {wrong}"
