"""Nothing lost: the service killed with kill -9 at random moments while submissions are graded, then started
again; every submission that got a 202 ends graded exactly once, with the CLI's points."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.classes import left_behind
from tests.notebooks import ROOT, append_cell, source_notebook
from tests.service.test_api import _cli, _free_port

A = "01-datasets"
STUDENTS = ["alice", "bob", "carol", "dave"]
pytestmark = pytest.mark.xdist_group("service-kill")


def _start(folder, port):
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--port", str(port)], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=ROOT))
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/submissions/none", timeout=2)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)


def test_kill_9_while_grading_loses_no_accepted_submission(tmp_path):
    _cli(tmp_path, "students", "add", *STUDENTS)
    tokens = dict(line.split("\t") for line in _cli(tmp_path, "tokens").split("\n") if "\t" in line)
    port, rng = _free_port(), random.Random(5)
    proc = _start(tmp_path, port)
    accepted = {}
    for student in STUDENTS:       # four different notebooks (each its own grading), one per student
        nb = append_cell(source_notebook(A), f"# {student}'s run\nnote = {student!r}", index=None)
        answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/submissions", params={"assignment": A},
                            content=json.dumps(nb).encode(), headers={"Authorization": f"Bearer {tokens[student]}"},
                            timeout=30)
        assert answer.status_code == 202, answer.text
        accepted[answer.json()["id"]] = student
    kills = 0
    for stratum in range(3):       # kill -9 at a moment of each third of [0.5, 6) s, then start again
        time.sleep(0.5 + 5.5 * (stratum + rng.random()) / 3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = _start(tmp_path, port)
    try:
        deadline = time.monotonic() + 300
        while True:
            with sqlite3.connect(tmp_path / "grading-service.db") as db:
                rows = db.execute("SELECT id, status, results, attempts FROM submissions").fetchall()
            if all(status in ("done", "failed") for _, status, _, _ in rows) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert kills == 3 and {row[0] for row in rows} == set(accepted), "exactly the accepted submissions, once each"
    for submission_id, status, results, attempts in rows:
        assert status == "done" and json.loads(results)["score"] == 13, (accepted[submission_id], status, attempts)
    assert left_behind(tmp_path) == [], "a killed service left grading processes behind"
