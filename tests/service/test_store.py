"""The grading service's store, on SQLite and on PostgreSQL: its schema from migrations, students, tokens kept
only as hashes, revoked and re-issued, submissions numbered in arrival order by several writers at once; the
commands that manage students and tokens, run as an instructor would in a course folder."""
import csv
import glob
import os
import stat
import subprocess
import sys
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from autograder.service import store
from autograder.service.store import (StoreError, add_students, issue_token, open_store, revoke_tokens,
                                      roster_ids, students, who)
from tests.notebooks import ROOT


@pytest.fixture
def engine(database_url):
    """The store on the module's database, emptied after each test."""
    engine = open_store(database_url)
    yield engine
    with engine.begin() as connection:
        for table in reversed(store.Base.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()


def _everything_stored(engine):
    """Every byte the database keeps: SQLite's files, or every row of every table of PostgreSQL's database."""
    if engine.dialect.name == "sqlite":
        engine.dispose()
        return b"".join(open(path, "rb").read() for path in glob.glob(engine.url.database + "*"))
    with engine.connect() as connection:
        return repr([connection.execute(text(f"SELECT * FROM {table}")).all()
                     for table in inspect(connection).get_table_names()]).encode()


def test_tokens_are_kept_only_as_hashes(engine):
    add_students(engine, ["alice"])
    token = issue_token(engine, "alice")
    stored = _everything_stored(engine)
    assert token.encode() not in stored and b"alice" in stored


@pytest.fixture
def other_url(database_url, request, tmp_path):
    """Another new, empty database of the module's kind."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.db'}"
    return request.getfixturevalue("postgres").database()


def _schema_differences(engine):
    """What alembic finds different between the models and the database's schema (types included)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "compare_server_default": True})
        return compare_metadata(context, store.Base.metadata)


def test_a_new_database_is_migrated_to_the_newest_revision_the_models_describe(engine):
    migrations = ScriptDirectory(store.MIGRATIONS)
    assert [(r.revision, os.path.basename(r.path)[:4]) for r in migrations.walk_revisions()] == [
        ("0002", "0002"), ("0001", "0001")], "each migration's file is numbered as its revision"
    with engine.connect() as connection:
        assert store.revision(connection) == store.newest_revision() == migrations.get_current_head()
        if engine.dialect.name == "postgresql":
            assert "submission_arrivals" in inspect(connection).get_sequence_names()
    assert _schema_differences(engine) == []


def test_a_store_made_before_migrations_is_adopted(other_url):
    old = create_engine(other_url)
    store.Base.metadata.create_all(old)                   # as open_store made its stores before migrations
    with old.begin() as connection:
        if old.dialect.name == "postgresql":
            connection.execute(text("DROP SEQUENCE submission_arrivals"))    # which had no arrival sequence
        connection.execute(text("INSERT INTO students VALUES ('alice', '2026-01-01 10:00:00')"))
        connection.execute(text("INSERT INTO notebooks VALUES ('abc', '')"))
        connection.execute(text("INSERT INTO submissions (id, seq, student_id, assignment, sha256, key, status, "
                                "attempts, received) VALUES ('s7', 7, 'alice', 'A', 'abc', 'k', 'done', 1, "
                                "'2026-01-01 10:05:00')"))
    old.dispose()
    engine = open_store(other_url)
    with engine.connect() as connection:
        assert store.revision(connection) == store.newest_revision()
    assert _schema_differences(engine) == [] and students(engine) == ["alice"]
    new_id, position = store.accept(engine, "alice", "A", b"{}", "k")
    with Session(engine) as session:
        assert session.get(store.Submission, new_id).seq == 8 and position == 1, "numbering goes on after 7"
    engine.dispose()


def test_writers_at_once_get_distinct_arrival_numbers_in_their_order(engine, database_url):
    writers, each = 8, 6
    add_students(engine, [f"s{i}" for i in range(writers)])
    engines = [engine, open_store(database_url)]          # two pools of connections, as two processes would have
    start, accepted, errors = threading.Barrier(writers), {i: [] for i in range(writers)}, []

    def write(i):
        start.wait()
        try:
            for n in range(each):                         # every other one the same notebook for everyone
                data = b"{}" if n % 2 else f"{i}/{n}".encode()
                accepted[i].append(store.accept(engines[i % 2], f"s{i}", "A", data, "k")[0])
        except Exception as exc:                          # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engines[1].dispose()
    assert not errors, errors
    with Session(engine) as session:
        seq = dict(session.execute(select(store.Submission.id, store.Submission.seq)).all())
        notebooks = session.scalars(select(store.Notebook.sha256)).all()
    assert len(seq) == writers * each and len(set(seq.values())) == writers * each, "distinct numbers, none lost"
    for ids in accepted.values():
        assert [seq[i] for i in ids] == sorted(seq[i] for i in ids), "one writer's submissions in its order"
    assert len(notebooks) == writers * each // 2 + 1


def test_the_assignments_to_warm_up_are_the_queued_ones_first_then_the_latest(engine):
    add_students(engine, ["ann"])
    assert store.recent_assignments(engine) == []
    for assignment in ("03-linear-regression", "01-datasets", "02-tensorboard", "01-datasets"):
        store.accept(engine, "ann", assignment, assignment.encode(), "k")
    while (claimed := store.claim(engine)) is not None and claimed[1] != "02-tensorboard":
        store.finish(engine, claimed[0], {"score": 0})           # 03 and the first 01 graded; 02 grading
    store.recover(engine)                                        # after a restart: 02 queued again, then 01
    assert store.recent_assignments(engine, 2) == ["02-tensorboard", "01-datasets"]
    assert store.recent_assignments(engine, 3) == ["02-tensorboard", "01-datasets", "03-linear-regression"]


def test_a_token_names_its_student_until_revoked_or_reissued(engine):
    add_students(engine, ["alice", "bob"])
    first, bob = issue_token(engine, "alice"), issue_token(engine, "bob")
    assert who(engine, first) == "alice" and who(engine, bob) == "bob"
    second = issue_token(engine, "alice")
    assert who(engine, first) is None and who(engine, second) == "alice", "a new token revokes the one before"
    assert revoke_tokens(engine, "alice") == 1
    assert who(engine, second) is None and who(engine, bob) == "bob"
    for forged in ("", "x" * 10_000, second[:-1], second + "A", None, 42):
        assert who(engine, forged) is None


def test_instructor_tokens_grant_nothing_as_a_student_and_back(engine):
    add_students(engine, ["alice"])
    student, instructor = issue_token(engine, "alice"), issue_token(engine, "prof", role="instructor")
    assert who(engine, instructor, role="instructor") == "prof" and who(engine, instructor) is None
    assert who(engine, student, role="instructor") is None


@pytest.mark.parametrize("odd", ["../etc", "a/b", "a\\b", "", " alice", "bob\n", "\x00", "x" * 129, ".", ".."])
def test_odd_student_ids_are_refused(engine, odd):
    with pytest.raises(StoreError, match="not a usable student id"):
        add_students(engine, [odd])
    assert students(engine) == []


def test_ids_from_a_class_are_kept_as_they_are(engine):
    ids = ["Zoë Ünal", "o'brien", "李雷", "a.b-c_d@uni.example"]
    assert add_students(engine, ids + ["Zoë Ünal"]) == ids
    assert add_students(engine, ids) == []
    assert students(engine) == sorted(ids)
    with pytest.raises(StoreError, match="add them first"):
        issue_token(engine, "nobody")


def test_roster_columns(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text("name,student_id\nAlice A,alice\nBob B,bob\n,\n", encoding="utf-8")
    plain = tmp_path / "b.csv"
    plain.write_text("\ufeffalice\nbob\n", encoding="utf-8")
    assert roster_ids(with_header) == ["alice", "bob"] and roster_ids(plain) == ["alice", "bob"]


def _cli(folder, *args):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))


def test_commands_add_students_and_write_tokens_for_the_owner_only(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nalice\nbob\n", encoding="utf-8")
    assert _cli(tmp_path, "students", "add", "carol", "--roster", str(roster)).returncode == 0
    refused = _cli(tmp_path, "students", "add", "../x")
    assert refused.returncode == 2 and "not a usable student id" in refused.stderr
    assert _cli(tmp_path, "students", "list").stdout.split() == ["alice", "bob", "carol"]
    proc = _cli(tmp_path, "tokens", "--out", "tokens.csv")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.csv").st_mode) == 0o600
    with open(tmp_path / "tokens.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    engine = open_store(f"sqlite:///{tmp_path / 'grading-service.db'}")
    assert {row["name"]: who(engine, row["token"]) for row in rows} == {"alice": "alice", "bob": "bob",
                                                                         "carol": "carol"}
    assert _cli(tmp_path, "tokens", "--student", "bob", "--revoke").returncode == 0
    assert who(engine, next(r["token"] for r in rows if r["name"] == "bob")) is None
    assert _cli(tmp_path, "tokens", "--student", "nobody").returncode == 2
