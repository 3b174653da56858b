"""Nothing lost: the service killed with kill -9 ten times at random moments while a stream of submissions
arrives and is graded, started again after each kill; every submission that got a 202 ends graded exactly
once, with the CLI's points, and nothing else is recorded but what a kill cut off mid-request."""
import os
import random
import signal
import sqlite3
import threading
import time

import httpx
import pytest

from tests.classes import left_behind
from tests.notebooks import append_cell, source_notebook
from tests.service import server

A = "01-datasets"
STUDENTS = ["alice", "bob", "carol", "dave", "erin", "frank"]
KILLS = 10
VERSIONS = 2
pytestmark = pytest.mark.xdist_group("service-kill")


class Stream:
    """Students submitting in turn, once a second each, while the test runs (the course allows them many
    submissions in flight); the notebooks are a few versions of the reference, so most are answered from the
    result cache once one of them was graded (the same path as new work, only faster)."""

    def __init__(self, url, tokens, seed=7):
        self.url, self.tokens, self.rng = url, tokens, random.Random(seed)
        self.accepted, self.cut_off, self.refused = {}, 0, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def notebook(self):
        return append_cell(source_notebook(A), f"# my run\nnote = {self.rng.randrange(VERSIONS)}", index=None)

    def run(self):
        while not self.stopping.is_set():
            for student in STUDENTS:
                try:
                    answer = server.submit(self.url, self.tokens[student], self.notebook(), A)
                except httpx.TransportError:            # the service is down, or was killed mid-request
                    self.cut_off += 1
                    continue
                if answer.status_code == 202:
                    self.accepted[answer.json()["id"]] = student
                else:
                    assert answer.status_code == 503, answer.text     # only a full queue may refuse them
                    self.refused += 1
            time.sleep(1.0)


def _rows(folder):
    with sqlite3.connect(folder / "grading-service.db") as db:
        return db.execute("SELECT id, status, results, attempts FROM submissions").fetchall()


def test_kill_9_while_a_stream_is_graded_loses_no_accepted_submission(tmp_path):
    import json

    server.configure(tmp_path, "c.GradingService.in_flight = 1000\nc.GradingService.per_hour = 1000\n")
    tokens = server.enrol(tmp_path, STUDENTS)
    port, rng = server.free_port(), random.Random(5)
    proc = server.start(tmp_path, port)
    stream = Stream(f"http://127.0.0.1:{port}", tokens)
    stream.thread.start()
    interrupted = 0
    try:
        for stratum in rng.sample(range(KILLS), KILLS):   # kill -9 at a moment of each tenth of [0.3, 3.3) s
            time.sleep(0.3 + 3.0 * (stratum + rng.random()) / KILLS)           # after a start
            interrupted += any(status == "grading" for _, status, _, _ in _rows(tmp_path))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc = server.start(tmp_path, port)
        stream.stopping.set()
        stream.thread.join(timeout=60)
        deadline = time.monotonic() + 300
        while not all(row[1] in ("done", "failed") for row in _rows(tmp_path)) and time.monotonic() < deadline:
            time.sleep(1.0)
        rows = _rows(tmp_path)
    finally:
        stream.stopping.set()
        server.stop(proc)
    recorded = {row[0] for row in rows}
    assert set(stream.accepted) <= recorded, "every submission that got a 202 is kept"
    assert len(recorded - set(stream.accepted)) <= stream.cut_off, "nothing recorded but what a kill cut off"
    assert interrupted >= 3, f"only {interrupted} of {KILLS} kills came while a submission was being graded"
    assert len(stream.accepted) >= 5 * KILLS and stream.cut_off >= KILLS, (len(stream.accepted), stream.cut_off)
    for submission_id, status, results, attempts in rows:
        assert status == "done" and json.loads(results)["score"] == 13, (submission_id, status, attempts)
    assert left_behind(tmp_path) == [], "a killed service left grading processes behind"


def _grading_processes(service_pid):
    """Pids of the service's grading processes (its spawned pool workers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == service_pid and b"spawn_main" in command:
            found.append(int(pid))
    return found


def _kill_while_grading(url, token, submission_id, proc, patience=120):
    """kill -9 the grading processes once the submission is being graded; True if it was."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        view = httpx.get(f"{url}/api/v1/submissions/{submission_id}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30).json()
        workers = _grading_processes(proc.pid)
        if view["status"] == "grading" and workers:
            time.sleep(0.5)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            return True
        assert view["status"] in ("queued", "grading"), view
        time.sleep(0.2)
    return False


def test_a_grading_process_that_dies_costs_only_its_submission(tmp_path):
    """A grading process killed while grading: its submission is graded again once, and after a second death
    it is reported failed with the machine's reason; the service goes on grading the next one."""
    tokens = server.enrol(tmp_path, ["gina", "hugo"])
    port = server.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = server.start(tmp_path, port)
    try:
        doomed = server.submit(url, tokens["gina"], append_cell(source_notebook(A), "# gina", index=None), A)
        assert doomed.status_code == 202, doomed.text
        for _ in range(2):
            assert _kill_while_grading(url, tokens["gina"], doomed.json()["id"], proc), "it was never graded"
        lost = server.result(url, tokens["gina"], doomed.json()["id"])
        after = server.submit(url, tokens["hugo"], append_cell(source_notebook(A), "# hugo", index=None), A)
        graded = server.result(url, tokens["hugo"], after.json()["id"])
        assert proc.poll() is None, "the service itself kept running"
    finally:
        server.stop(proc)
    assert lost["status"] == "failed" and "not a fault of your notebook" in lost["reason"], lost
    assert "results" not in lost
    assert graded["status"] == "done" and graded["results"]["score"] == 13, graded
