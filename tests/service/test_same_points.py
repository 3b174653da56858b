"""One grader: the service's results equal the CLI's, to the point and word, for the reference, the student
release and a known mistake of three lessons (the service grades them while this process grades the same
notebooks as the CLI does)."""
import pytest

from tests.lessons.test_datasets import MISTAKES as DATASETS_MISTAKES
from tests.lessons.test_linear_regression import MISTAKES as LINEAR_MISTAKES
from tests.lessons.test_logistic_regression import MISTAKES as LOGISTIC_MISTAKES
from tests.notebooks import edit_solution, grade, release_notebook, source_notebook
from tests.service import server

pytestmark = pytest.mark.xdist_group("service-points")
MISTAKE = {"01-datasets": DATASETS_MISTAKES["missing_bias"],
           "03-linear-regression": LINEAR_MISTAKES["init_not_a_leaf"],
           "04-logistic-regression": LOGISTIC_MISTAKES["sigmoid_naive_overflow"]}


def _notebooks():
    """{(assignment, kind): notebook} for the three lessons."""
    found = {}
    for assignment, (task, old, new) in MISTAKE.items():
        found[assignment, "reference"] = source_notebook(assignment)
        found[assignment, "release"] = release_notebook(assignment)
        found[assignment, "mistake"] = edit_solution(source_notebook(assignment), task, old, new)
    return found


def test_the_service_gives_the_clis_results(tmp_path):
    server.configure(tmp_path, "c.GradingService.in_flight = 9\n")
    token = server.enrol(tmp_path, ["ann"])["ann"]
    port = server.free_port()
    proc = server.start(tmp_path, port, "--jobs", "1")
    url = f"http://127.0.0.1:{port}"
    notebooks = _notebooks()
    try:
        ids = {}
        for (assignment, kind), nb in notebooks.items():
            answer = server.submit(url, token, nb, assignment)
            assert answer.status_code == 202, answer.text
            ids[assignment, kind] = answer.json()["id"]
        expected = {which: grade(nb).to_gradescope() for which, nb in notebooks.items()}   # meanwhile, the CLI's
        served = {which: server.result(url, token, ids[which], patience=600) for which in notebooks}
    finally:
        server.stop(proc)
    for which in notebooks:
        assert served[which]["status"] == "done", (which, served[which])
        got, want = served[which]["results"], expected[which]
        for results in (got, want):
            results.pop("execution_time", None)
        assert got == want, which
    scores = {which: expected[which]["score"] for which in notebooks}
    for assignment in MISTAKE:         # the three kinds differ, so equality above compared three real outcomes
        assert scores[assignment, "release"] < scores[assignment, "mistake"] < scores[assignment, "reference"], scores
