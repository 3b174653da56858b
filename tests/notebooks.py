"""Test helpers: load source/release notebooks, swap in other solutions, grade in a sandbox."""
import copy
import os

from autograder.judge.engine import grade_notebook
from autograder.judge.notebook import nbgrader_meta, read_notebook, source_of
from autograder.judge.tasks import lesson_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def notebook_path(assignment, kind="source"):
    """Path of ``<kind>/<assignment>/<lesson>.ipynb``."""
    return os.path.join(ROOT, kind, assignment, lesson_name(assignment) + ".ipynb")


def source_notebook(assignment):
    """A fresh copy of the assignment's source (reference) notebook."""
    return read_notebook(notebook_path(assignment, "source"))


def release_notebook(assignment):
    """A fresh copy of the assignment's student release notebook."""
    return read_notebook(notebook_path(assignment, "release"))


def find_cell(nb, grade_id):
    """The cell whose nbgrader grade_id is ``grade_id``."""
    for cell in nb["cells"]:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def replace_solution(nb, task_id, new_source):
    """A copy of ``nb`` whose solution cell of ``task_id`` holds ``new_source`` instead."""
    nb = copy.deepcopy(nb)
    find_cell(nb, f"{task_id}_code")["source"] = new_source.strip("\n")
    return nb


def edit_solution(nb, task_id, old, new, count=1):
    """A copy of ``nb`` with ``old`` replaced by ``new`` in the solution cell of ``task_id``."""
    nb = copy.deepcopy(nb)
    cell = find_cell(nb, f"{task_id}_code")
    text = source_of(cell)
    if old not in text:
        raise AssertionError(f"{old!r} is not in the solution of {task_id}")
    cell["source"] = text.replace(old, new, count)
    return nb


def append_cell(nb, source, cell_type="code", index=None):
    """A copy of ``nb`` with one more (student) cell, at the end or at ``index``."""
    nb = copy.deepcopy(nb)
    cell = {"cell_type": cell_type, "metadata": {}, "source": source}
    if cell_type == "code":
        cell.update({"outputs": [], "execution_count": None})
    nb["cells"].insert(len(nb["cells"]) if index is None else index, cell)
    return nb


def grade(nb, assignment=None, **kwargs):
    """Grade ``nb`` (a notebook dict or path) exactly as the CLI does; returns the Report.

    Every report graded in the tests is held to the feedback rule: no line repeats within a task."""
    from autograder.judge.engine import _shape_of

    report = grade_notebook(nb, assignment=assignment, **kwargs)
    for task in report.tasks:
        shapes = [_shape_of(line) for line in task.feedback]
        assert len(shapes) == len(set(shapes)), f"task {task.id} says the same thing twice: {task.feedback}"
    return report


_REFERENCE = {}


def reference_grading(assignment):
    """(report, requests) of grading ``assignment``'s reference notebook, once per test process: ``requests`` is
    [(probe name, source, (args, kwargs), value)] of every request made to the student's process. The tests that
    share it are in the xdist group "reference", so one worker grades each reference once."""
    from autograder.sandbox.student import SandboxStudent

    if assignment not in _REFERENCE:
        requests = []
        original = SandboxStudent._request

        def spy(self, req, timeout, label):
            value = original(self, req, timeout, label)
            requests.append((req.get("name") or req.get("op"), req.get("source", ""),
                             (req.get("args"), req.get("kwargs")), value))
            return value

        SandboxStudent._request = spy
        try:
            report = grade(source_notebook(assignment), assignment=assignment)
        finally:
            SandboxStudent._request = original
        _REFERENCE[assignment] = report, requests
    return _REFERENCE[assignment]


def judge_in_process(nb, assignment, task_id):
    """Failure messages of ``task_id``'s graders run against ``nb``'s code executed in this process (no sandbox:
    for the many small variants of one task, where only the verdict is in question)."""
    import contextlib
    import io
    import shutil
    import tempfile

    from autograder.judge.notebook import program_cells
    from autograder.judge.runner import run_graders
    from autograder.judge.tasks import load_assignment
    from autograder.sandbox.student import InProcessStudent

    import torch

    ns = {"__name__": "__main__"}
    here, folder = os.getcwd(), tempfile.mkdtemp(prefix="in-process-")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # as in the sandbox: two test workers on two cores, not four threads
    os.chdir(folder)                       # files the code writes stay out of the checkout
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for _, source in program_cells(nb):
                exec(compile(source, "<cell>", "exec"), ns)
            outcomes = run_graders(load_assignment(assignment), InProcessStudent(ns), [task_id])
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)
        shutil.rmtree(folder, ignore_errors=True)
    assert outcomes
    return [o.message for o in outcomes if not o.passed]
