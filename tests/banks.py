"""Mistake banks and correct variants: apply them to a reference notebook, and hold a report to them."""
from tests.notebooks import edit_solution, replace_solution


def with_edits(nb, edits):
    """``nb`` with each task's solution edited: ``edits`` is {task: (old text, new text)}."""
    for task, (old, new) in edits.items():
        nb = edit_solution(nb, task, old, new)
    return nb


def with_solutions(nb, sources):
    """``nb`` with each task's solution replaced: ``sources`` is {task: source}."""
    for task, source in sources.items():
        nb = replace_solution(nb, task, source)
    return nb


def expect_full_marks(report):
    """Every task passed."""
    assert report.error is None, report.error
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}


def expect_lost_exactly(report, tasks, hints=None):
    """Exactly ``tasks`` failed, each saying why in the student's terms (no probe, no traceback), with the
    words ``hints[task]`` where given."""
    assert report.error is None, report.error
    assert report.failed_tasks() == set(tasks), {t.id: t.output for t in report.tasks}
    for task in tasks:
        output = report.by_task[task].output
        assert output.strip() and "probe" not in output and "Traceback" not in output, output
        if hints and task in hints:
            assert hints[task] in output, output


def expect_never_loses_under_seeds(reference, assignment, seeds, monkeypatch):
    """The flakiness check, CI-sized (benchmarks/flakiness.py runs 20 seeds): the reference keeps every point
    under each COURSE_GRADING_SEED in ``seeds``, graded in one sandboxed student."""
    from autograder.judge.notebook import program_cells
    from autograder.sandbox.student import SandboxStudent
    from tests.notebooks import grade

    student = SandboxStudent(program_cells(reference))
    student.start()
    try:
        for seed in seeds:
            monkeypatch.setenv("COURSE_GRADING_SEED", str(seed))
            report = grade(reference, assignment=assignment, student=student)
            assert report.failed_tasks() == set(), (seed, {t.id: t.output for t in report.tasks})
    finally:
        student.close()


def expect_groups_cover(groups, bank):
    """Mistakes graded in groups: every mistake of ``bank`` ({name: (task, ...)}) is in exactly one group, and a
    group holds at most one mistake per task (so that each must cost exactly its own task)."""
    grouped = [name for group in groups for name in group]
    assert sorted(grouped) == sorted(bank)
    for group in groups:
        tasks = [bank[name][0] for name in group]
        assert len(set(tasks)) == len(tasks), group


def one_per_task(bank):
    """The mistakes of ``bank`` ({name: (task, ...)}) in groups that hold at most one mistake of each task, to be
    graded together: the graders of each task call only that task's functions (each mistake alone loses only its
    own task), so every task of a group must fail, and only those."""
    by_task = {}
    for name in sorted(bank):
        by_task.setdefault(bank[name][0], []).append(name)
    rounds = max(len(found) for found in by_task.values())
    return [[found[i] for found in by_task.values() if i < len(found)] for i in range(rounds)]
