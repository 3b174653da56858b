"""``--scheduler``: the same gradings on a real Dask cluster (LocalCluster, 2 worker processes) give the same
results as local jobs; the judge stays the only writer, and a thief (``tests.hostile.THIEF``) finds nothing on
a Dask worker either. The grading service grades on the same cluster's workers."""
import pytest

from tests.classes import A, cli, mixed_class, write_class
from tests.hostile import THIEF
from tests.notebooks import append_cell, release_notebook
from tests.classroom.test_batch import read_csv, results_of
from tests.notebooks import grade, source_notebook
from tests.service import server

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


def _executed(cluster):
    """{worker: tasks it ran} of the cluster."""
    with distributed.Client(cluster) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_dask_cluster_grades_like_local_jobs(tmp_path, cluster):
    students = {k: v for k, v in mixed_class().items() if k in ("alice", "Zoë Ünal", "bob")}
    students["eve"] = append_cell(release_notebook(A), THIEF)
    write_class(str(tmp_path / "submitted"), students)
    local = cli("batch", str(tmp_path / "submitted"), "--assignment", A, "--out", str(tmp_path / "local"),
                "--jobs", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    before = sum(_executed(cluster).values())
    remote = cli("batch", str(tmp_path / "submitted"), "--assignment", A, "--out", str(tmp_path / "dask"),
                 "--scheduler", cluster.scheduler_address)
    assert remote.returncode == 0, remote.stderr[-2000:]
    executed = _executed(cluster)                             # the workers really graded
    assert len(executed) == 2 and sum(executed.values()) - before == len(students), executed
    assert results_of(tmp_path / "dask") == results_of(tmp_path / "local")
    assert results_of(tmp_path / "dask")["eve"][0] == 0
    assert read_csv(tmp_path / "dask" / "grades.csv") == read_csv(tmp_path / "local" / "grades.csv")


def test_the_grading_service_grades_on_the_dask_workers(tmp_path, cluster):
    tokens = server.enrol(tmp_path, ["alice", "bob"])
    port = server.free_port()
    proc = server.start(tmp_path, port, "--scheduler", cluster.scheduler_address)
    url = f"http://127.0.0.1:{port}"
    wrong = append_cell(source_notebook(A), "def minibatches(X, y, batch_size, shuffle=True, seed=None):\n"
                                            "    return []", index=None)
    try:
        before = sum(_executed(cluster).values())
        ids = {student: server.submit(url, tokens[student], nb, A).json()["id"]
               for student, nb in (("alice", source_notebook(A)), ("bob", wrong))}
        views = {student: server.result(url, tokens[student], ids[student]) for student in ids}
        assert sum(_executed(cluster).values()) - before == 2, "both were graded on the workers"
    finally:
        server.stop(proc)
    for student, nb in (("alice", source_notebook(A)), ("bob", wrong)):
        assert views[student]["status"] == "done", views[student]
        expected = grade(nb).to_gradescope()
        assert views[student]["results"]["score"] == expected["score"] and [t["score"] for t in views[student][
            "results"]["tests"]] == [t["score"] for t in expected["tests"]]
    assert views["bob"]["results"]["score"] < views["alice"]["results"]["score"]
