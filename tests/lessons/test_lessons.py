"""Every lesson: its reference gets full marks, and its untouched release gets zero on every task of the
lesson's task list (the mistake banks and correct variants are in each lesson's own test file)."""
import pytest

from autograder.judge.tasks import load_assignment
from tests.notebooks import grade, reference_grading, release_notebook

# assignment: (points, a task whose feedback in the release must say it is not implemented yet, or None)
LESSONS = {
    "01-datasets": (13, "minibatches"),
    "02-tensorboard": (10, "read_scalars"),
    "03-linear-regression": (9, None),
    "04-logistic-regression": (10, None),
    "05-softmax-regression": (9, "softmax_cross_entropy"),
    "06-mlp-gpu": (14, "device_helpers"),
    "07-mnist-cnn": (8, "mnist_cnn"),
}


@pytest.mark.xdist_group("reference")       # the grading the probe-data tests record (tests/judge/test_probe_data.py)
@pytest.mark.parametrize("assignment", sorted(LESSONS))
def test_reference_gets_full_marks(assignment):
    report, _ = reference_grading(assignment)
    assert report.error is None
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}
    assert report.score == report.max_score == LESSONS[assignment][0]


@pytest.mark.parametrize("assignment", sorted(LESSONS))
def test_untouched_release_gets_zero_on_every_task(assignment):
    report = grade(release_notebook(assignment))
    assert report.error is None
    assert report.score == 0
    assert report.failed_tasks() == {t.id for t in load_assignment(assignment).tasks}
    task = LESSONS[assignment][1]
    if task is not None:
        assert "not implemented yet" in report.by_task[task].output
