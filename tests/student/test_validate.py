"""`nbgrader validate` (what JupyterLab's Validate button runs) tells the truth, in a student's bundle folder:
it fails an untouched release naming every task, fails a notebook whose quick checks fail naming that task,
passes the reference and a release filled with the reference answers, and never shows hidden tests or
grader code. nbgrader validate exits 0 whatever it finds, so its output is what is judged."""
import json
import os
import re
import subprocess
import sys

import pytest

from autograder.distribute.bundle import write_bundle
from autograder.sandbox.library import ASSIGNMENTS
from autograder.judge.notebook import nbgrader_meta
from autograder.judge.tasks import lesson_name
from tests.classes import as_submission
from tests.notebooks import release_notebook, source_notebook

# What Validate says when every check cell passes: the quick checks passed, and the hidden graders check more.
SUCCESS = "Success! The quick checks of every task passed."
OVERCLAIM = "Success! Your notebook passes all the tests."     # nbgrader's own words: never shown to students
# (Validate may say that "the hidden graders check more", but never name their files or code.)
NEVER_SHOWN = ("check_task", "HIDDEN TESTS", "autograder", "BEGIN SOLUTION", "graders/", "graders.", "def test_",
               "probe_")


def validate(folder, assignment, nb):
    """Write ``nb`` as the bundle's notebook and run ``nbgrader validate`` on it there; returns its output."""
    name = lesson_name(assignment) + ".ipynb"
    with open(os.path.join(folder, name), "w") as handle:
        json.dump(nb, handle)
    # The demos shrink as in CI; nothing else of grading applies (no COURSE_GRADING, progress bars on).
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for key in ("COURSE_GRADING", "TQDM_DISABLE"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", name],
                          cwd=folder, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def failed_tasks(output):
    """Task ids of the grade cells that validate lists as failed (each begins '# Task `<id>`')."""
    blocks = output.split("The following cell failed:")[1:]
    found = []
    for block in blocks:
        match = re.search(r"^\s*# Task `([a-z0-9_]+)`", block, re.M)
        found.append(match.group(1) if match else None)
    return found


def task_ids(assignment):
    return [nbgrader_meta(c)["grade_id"] for c in release_notebook(assignment)["cells"]
            if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")]


def assert_nothing_hidden_shown(output):
    for leak in NEVER_SHOWN:
        assert leak not in output, f"validate showed {leak!r}"


@pytest.fixture
def bundle(tmp_path):
    def make(assignment):
        return write_bundle(assignment, dest=str(tmp_path / assignment))
    return make


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_fails_naming_every_task(bundle, assignment):
    output = validate(bundle(assignment), assignment, release_notebook(assignment))
    assert SUCCESS not in output and OVERCLAIM not in output
    tasks = task_ids(assignment)
    assert f"VALIDATION FAILED ON {len(tasks)} CELL(S)" in output, output[-3000:]
    assert sorted(failed_tasks(output)) == sorted(tasks)
    assert "NotImplementedError: Task `" in output, "the stubs' messages name their task"
    assert_nothing_hidden_shown(output)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_filled_with_the_reference_passes(bundle, assignment):
    output = validate(bundle(assignment), assignment, as_submission(source_notebook(assignment),
                                                                     release_notebook(assignment)))
    assert SUCCESS in output, output[-4000:]
    assert OVERCLAIM not in output
    assert_nothing_hidden_shown(output)


WRONG_MINIBATCHES = '''
def minibatches(X, y, batch_size, shuffle=True, generator=None):
    """Yield (X_batch, y_batch); this one drops the last, smaller batch."""
    n = len(X)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]
'''


def test_failing_quick_check_fails_naming_its_task(bundle):
    assignment = "01-datasets"
    nb = as_submission(source_notebook(assignment), release_notebook(assignment))
    for cell in nb["cells"]:
        if nbgrader_meta(cell).get("grade_id") == "minibatches_code":
            cell["source"] = WRONG_MINIBATCHES.strip()
    output = validate(bundle(assignment), assignment, nb)
    assert "VALIDATION FAILED ON 1 CELL(S)" in output, output[-3000:]
    assert failed_tasks(output) == ["minibatches"]
    assert "AssertionError: Task `minibatches`: 7 samples in batches of 3" in output
    assert_nothing_hidden_shown(output)


def test_reference_notebook_passes(bundle, tmp_path):
    """The source notebook itself validates where instructors keep it: beside the whole course library (its
    hidden tests run the graders in the kernel), in a temporary folder with the same nbgrader settings."""
    import shutil

    folder = tmp_path / "reference"
    folder.mkdir()
    shutil.copy(os.path.join(bundle("01-datasets"), "nbgrader_config.py"), folder)
    output = validate(str(folder), "01-datasets", source_notebook("01-datasets"))
    assert SUCCESS in output, output[-4000:]


def test_quick_check_clean_but_wrong_notebook_is_not_told_it_passes_all_tests(bundle):
    """A mistake the quick checks cannot see (the blobs' spread ignored): Validate says the quick checks passed
    and that the hidden graders check more, never that the notebook passes all the tests; grading then fails
    the task."""
    from tests.notebooks import edit_solution, grade

    assignment = "01-datasets"
    wrong = edit_solution(source_notebook(assignment), "blobs_data", "+ spread * torch.randn(", "+ torch.randn(")
    nb = as_submission(wrong, release_notebook(assignment))
    output = validate(bundle(assignment), assignment, nb)
    text = " ".join(output.split())
    assert "VALIDATION FAILED" not in output, output[-3000:]
    assert OVERCLAIM not in text and "passes all the tests" not in text, output[-3000:]
    assert SUCCESS in text and "hidden graders check more" in text, output[-3000:]
    assert_nothing_hidden_shown(output)
    assert grade(nb).failed_tasks() == {"blobs_data"}, "the hidden graders do see the mistake"


def test_validate_runs_the_tasks_not_the_demos(bundle):
    """Validate runs the tasks' cells and their quick checks, never the demos (cells tagged skip-when-grading:
    full-size training, plots, TensorBoard; Run All shows them): a demo cell leaves no trace, a plain cell beside
    it does, and the locked demos of the release are not reported as changed."""
    assignment = "01-datasets"
    folder = bundle(assignment)
    nb = as_submission(source_notebook(assignment), release_notebook(assignment))
    assert any("skip-when-grading" in c["metadata"].get("tags", []) for c in nb["cells"]), "the release has demos"

    def cell(source, tags):
        return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags}, "outputs": [],
                "source": source}

    nb["cells"] += [cell("open('demo-ran', 'w').close()", ["skip-when-grading"]),
                    cell("open('plain-ran', 'w').close()", [])]
    output = validate(folder, assignment, nb)
    assert SUCCESS in output, output[-3000:]
    assert os.path.exists(os.path.join(folder, "plain-ran")), "the plain cell ran"
    assert not os.path.exists(os.path.join(folder, "demo-ran")), "Validate ran a demo"
