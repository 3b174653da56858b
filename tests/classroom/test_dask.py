"""``--scheduler``: the same gradings on a real Dask cluster (LocalCluster, 2 worker processes) give the same
results as local jobs; the judge stays the only writer, and a thief (``tests.hostile.THIEF``) finds nothing on
a Dask worker either."""
import pytest

from tests.classes import A, cli, mixed_class, write_class
from tests.hostile import THIEF
from tests.notebooks import append_cell, release_notebook
from tests.classroom.test_batch import read_csv, results_of

distributed = pytest.importorskip("distributed")


def test_dask_cluster_grades_like_local_jobs(tmp_path):
    students = {k: v for k, v in mixed_class().items() if k in ("alice", "Zoë Ünal", "bob")}
    students["eve"] = append_cell(release_notebook(A), THIEF)
    write_class(str(tmp_path / "submitted"), students)
    local = cli("batch", str(tmp_path / "submitted"), "--assignment", A, "--out", str(tmp_path / "local"),
                "--jobs", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = cli("batch", str(tmp_path / "submitted"), "--assignment", A, "--out", str(tmp_path / "dask"),
                     "--scheduler", cluster.scheduler_address)
        assert remote.returncode == 0, remote.stderr[-2000:]
        with distributed.Client(cluster) as client:          # the workers really graded
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert len(executed) == 2 and sum(executed.values()) == len(students), executed
    assert results_of(tmp_path / "dask") == results_of(tmp_path / "local")
    assert results_of(tmp_path / "dask")["eve"][0] == 0
    assert read_csv(tmp_path / "dask" / "grades.csv") == read_csv(tmp_path / "local" / "grades.csv")
