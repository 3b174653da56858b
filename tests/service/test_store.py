"""The grading service's store: students, and tokens kept only as hashes, revoked and re-issued; the commands
that manage them, run as an instructor would in a course folder."""
import csv
import glob
import os
import stat
import subprocess
import sys

import pytest

from autograder.service.store import (StoreError, add_students, issue_token, open_store, revoke_tokens,
                                      roster_ids, students, who)
from tests.notebooks import ROOT


@pytest.fixture
def engine(tmp_path):
    return open_store(f"sqlite:///{tmp_path / 'service.db'}")


def test_tokens_are_kept_only_as_hashes(engine, tmp_path):
    add_students(engine, ["alice"])
    token = issue_token(engine, "alice")
    engine.dispose()
    stored = b"".join(open(path, "rb").read() for path in glob.glob(str(tmp_path / "service.db*")))
    assert token.encode() not in stored and b"alice" in stored


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
