"""The judge decides: probes bring back data, never verdicts, and carry no answer into the student's process.

Each lesson's reference notebook is graded once (``tests.notebooks.reference_grading``) while every request to
the student's process is recorded:
- no value a probe returns holds a Python bool (a verdict such as "is a leaf" or "was zeroed" computed next
  to the student's code, which that code can rewrite); requirements about state only that process can see
  are returned as data whose consequence the judge checks (values, gradients after a second step, outputs);
- no probe's source or text argument, nor the probe helpers staged into the box, holds a line of the lesson's
  reference solutions (correct stand-ins run in the judge, not next to the student's code).
"""
import ast

import pytest

from autograder.judge.notebook import nbgrader_meta, source_of
from autograder.sandbox.inside import probing
from autograder.judge.tasks import available_assignments
from tests.notebooks import reference_grading, source_notebook

# The canonical lines of a PyTorch training step, printed in every tutorial: a probe that trains or
# differentiates a student's model uses them too, and they are no lesson's answer.
IDIOMS = {"optimizer.zero_grad()", "optimizer.step()", "loss = loss_fn(y_hat, y)", "l.sum().backward()"}


def _bools(value, path=""):
    """Paths of every Python bool inside ``value`` (dicts, lists and tuples; list positions shown as [])."""
    if isinstance(value, bool):
        return [path or "(the value)"]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _bools(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += _bools(item, f"{path}[]")
    return found


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _solution_lines(nb):
    """The meaningful lines of the reference solutions (inside BEGIN/END SOLUTION), normalised."""
    lines = set()
    for cell in nb["cells"]:
        if not nbgrader_meta(cell).get("solution"):
            continue
        inside = False
        for line in source_of(cell).splitlines():
            stripped = line.strip()
            if stripped.startswith("### BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("### END SOLUTION"):
                inside = False
            elif inside and _meaningful(stripped):
                lines.add(" ".join(stripped.split()))
    return lines - IDIOMS


def _meaningful(line):
    """A line that says something of the answer (not a bare keyword, name, bracket or comment)."""
    if len(line) < 16 or line.startswith("#"):
        return False
    try:
        tree = ast.parse(line.rstrip(":") + (" pass" if line.endswith(":") else ""))
    except SyntaxError:
        return len(line) >= 24
    return not all(isinstance(node, (ast.Pass, ast.Expr)) and isinstance(getattr(node, "value", None), ast.Name)
                   for node in tree.body)


def recorded(assignment):
    """[(probe name, source, (args, kwargs), value)] of every request made grading the reference notebook."""
    report, requests = reference_grading(assignment)
    assert report.error is None and not report.failed_tasks(), (assignment, report.error)
    return requests


@pytest.mark.xdist_group("reference")
@pytest.mark.parametrize("assignment", available_assignments())
def test_probes_return_data_not_verdicts(assignment):
    found = set()
    for name, _, _, value in recorded(assignment):
        if name == "has":
            continue                    # whether a name is defined: the judge learns it, nothing depends on it
        found.update(f"{name}: {path}" for path in _bools(value))
    assert not found, f"{assignment}: these probes return a bool (a verdict made next to the student's code): " \
                      f"{sorted(found)}"


@pytest.mark.xdist_group("reference")
@pytest.mark.parametrize("assignment", available_assignments())
def test_no_reference_solution_reaches_the_student_process(assignment):
    answers = _solution_lines(source_notebook(assignment))
    assert answers, f"{assignment}: no reference solution lines found"
    found = set()
    with open(probing.__file__, encoding="utf-8") as handle:        # the probe helpers, staged into every box
        helpers = handle.read()
    for name, source, args, _ in recorded(assignment) + [("probing", helpers, ([], {}), None)]:
        sent = "\n".join([source, *_strings(args)])
        sent_lines = {" ".join(line.strip().split()) for line in sent.splitlines()}
        found.update(f"{name}: {line}" for line in answers & sent_lines)
    assert not found, f"{assignment}: lines of the reference solutions are sent to the student's process: " \
                      f"{sorted(found)}"
