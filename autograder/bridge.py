"""nbgrader's hidden tests call ``check_task(task_id, globals())``: the same graders, inside the kernel.

Inside nbgrader the kernel is not a security boundary (the CLI's sandbox is); this bridge exists so that
nbgrader's per-cell points equal the CLI's for honest submissions. A failed task raises ``TaskFailed``,
which Jupyter shows as the feedback lines only, without a traceback into grader code.
"""


class TaskFailed(AssertionError):
    """A task's graders failed; shown in the notebook as its feedback alone."""

    def _render_traceback_(self):
        return [str(self)]


def check_task(task_id, namespace):
    """Run the graders of ``task_id`` against ``namespace``; raise TaskFailed with feedback if any fails."""
    from autograder.judge.runner import run_graders
    from autograder.sandbox.student import InProcessStudent
    from autograder.sandbox.library import hidden_modules
    from autograder.judge.tasks import assignment_of_task

    import contextlib
    import io
    import os

    assignment = assignment_of_task(task_id)
    # Anything the graded code prints (progress bars, warnings) must not reach the cell's stderr,
    # where nbgrader would count it as an error.
    # One torch thread, as in the sandbox: graders train small models, which many threads slow down.
    import torch

    threads = torch.get_num_threads()
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            outcomes = run_graders(assignment, InProcessStudent(namespace, hidden_modules(assignment.id)), [task_id])
    finally:
        torch.set_num_threads(threads)
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    failures = []
    for outcome in outcomes:
        if not outcome.passed and outcome.message not in failures:
            failures.append(outcome.message)
    if not outcomes:
        failures.append("No grader ran for this task.")
    if failures:
        raise TaskFailed(f"Task {task_id} failed:\n" + "\n".join(f"- {m}" for m in failures))
    print(f"Task {task_id}: all checks passed.")
