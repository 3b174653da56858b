"""A real grading service process for tests: a course folder with students and tokens, `serve` on a free
loopback port, started and stopped."""
import json
import os
import socket
import subprocess
import sys
import time

import httpx

from tests.notebooks import ROOT


def cli(folder, *args):
    """Run ``python -m autograder ARGS`` in ``folder``; its stdout (the test fails on a non-zero exit)."""
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configure(folder, lines):
    """A course folder whose nbgrader_config.py holds ``lines`` (``c.GradingService...``, indented or not)."""
    import textwrap

    path = os.path.join(folder, "nbgrader_config.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("c = get_config()\n" + textwrap.dedent(lines))
    return folder


def enrol(folder, students, instructor=None, db=None):
    """Add ``students`` and issue their tokens (and an instructor's); {name: token}."""
    db = ("--db", db) if db else ()
    cli(folder, "students", "add", *students, *db)
    tokens = dict(line.split("\t") for line in cli(folder, "tokens", *db).splitlines() if "\t" in line)
    if instructor:
        tokens.update(line.split("\t") for line in cli(folder, "tokens", "--instructor", instructor, *db).splitlines()
                      if "\t" in line)
    return tokens


def start(folder, port, *args, log=subprocess.DEVNULL, patience=120):
    """``serve --port PORT ARGS`` in ``folder``, returned once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--port", str(port), *args], cwd=folder,
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))
    deadline = time.monotonic() + patience
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/submissions/none", timeout=2)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                said = open(log.name).read()[-3000:] if hasattr(log, "name") else ""
                raise AssertionError(f"the service did not start ({folder}): {said}")
            time.sleep(0.2)


def stop(proc):
    """Stop the service (SIGTERM, then SIGKILL after 20 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def submit(url, token, nb, assignment):
    """POST the notebook dict ``nb``; the response."""
    return httpx.post(f"{url}/api/v1/submissions", params={"assignment": assignment}, content=json.dumps(nb).encode(),
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def result(url, token, submission_id, patience=180):
    """The submission's view once it is done or failed (polling as a student's client would)."""
    deadline = time.monotonic() + patience
    while True:
        answer = httpx.get(f"{url}/api/v1/submissions/{submission_id}", timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        view = answer.json()
        if view["status"] in ("done", "failed") or time.monotonic() > deadline:
            return view
        time.sleep(0.5)
