"""The grading service's tests run against SQLite and, where PostgreSQL is installed, against PostgreSQL: one
throw-away cluster per test process, a new database per test module."""
import pytest

from tests.postgres import SKIP_REASON, Cluster, programs

# The PostgreSQL runs share one worker (and so one cluster) with the service's API tests.
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("service"))]


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster of this test process, stopped and removed at its end; skipped where not installed."""
    bindir = programs()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    cluster = Cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module", params=DATABASES)
def database_url(request, tmp_path_factory):
    """A new, empty database for the test module: a SQLite file, or a database in the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'grading-service.db'}"
    return request.getfixturevalue("postgres").database()
