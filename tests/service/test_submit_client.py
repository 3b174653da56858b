"""The students' client, `python -m course.submit`, against a real grading service (`python -m autograder serve`
on 127.0.0.1): it submits, waits, prints the CLI's table, and says in one sentence what went wrong."""
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from autograder.judge.report import Report, TaskResult
from course import submit
from tests.notebooks import ROOT, append_cell, grade, source_notebook
from tests.service import server

A = "01-datasets"
pytestmark = pytest.mark.xdist_group("service")
WRONG_MINIBATCHES = "def minibatches(X, y, batch_size, shuffle=True, seed=None):\n    return []"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submit-course")
    tokens = server.enrol(folder, ["alice", "bob", "carol", "dave"])
    port = server.free_port()
    with open(folder / "service.log", "w") as log:
        proc = server.start(folder, port, log=log)
        try:
            yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "folder": folder}
        finally:
            server.stop(proc)


def start(args, cwd, home, **env):
    """Start `python -m course.submit ARGS` in ``cwd`` as a student would: no service settings but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_SERVICE_")}
    clean.update(env, HOME=str(home), PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "course.submit", *map(str, args)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean)


def finish(proc):
    """The finished run of a client ``start`` started."""
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def client(args, cwd, home, **env):
    """Run the client to its end."""
    return finish(start(args, cwd, home, **env))


def write_notebook(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def refusal(proc, *tokens, submitted=False):
    """The one sentence a failed run printed last (checked: exit 1, no traceback, no token; nothing before it
    unless the notebook was ``submitted``)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert all(token not in proc.stderr for token in tokens)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and len(lines) == 1 + submitted, proc.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, proc.stderr
    return lines[-1]


def expected_output(nb, left):
    """What the client prints for ``nb``: the CLI's table, then what is left this hour."""
    return f"{grade(nb).table()}\n{left} of 10 submissions of {A} left this hour.\n"


# ------------------------------------------------------------------------------------------- the whole path
def test_the_reference_with_environment_settings_shows_the_clis_table(service, tmp_path):
    nb = source_notebook(A)
    path = write_notebook(tmp_path / "work" / "datasets.ipynb", nb)
    running = start([path], tmp_path, tmp_path, COURSE_SERVICE_URL=service["url"],
                    COURSE_SERVICE_TOKEN=service["tokens"]["alice"])
    expected = expected_output(nb, left=9)                # graded here while the service grades it
    proc = finish(running)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    assert "total                13    13" in proc.stdout
    assert f"datasets.ipynb submitted as {A}" in proc.stderr and "Traceback" not in proc.stderr
    assert service["tokens"]["alice"] not in proc.stdout + proc.stderr


def test_a_wrong_notebook_with_a_config_file_shows_its_feedback(service, tmp_path):
    """The settings come from course-service.toml two folders up; the notebook names no assignment, so its
    folder's name (01-datasets) is used; without a terminal, progress is one line per change."""
    wrong = append_cell(source_notebook(A), WRONG_MINIBATCHES, index=None)
    del wrong["metadata"]["course"]
    path = write_notebook(tmp_path / "course" / A / "datasets.ipynb", wrong)
    (tmp_path / "course-service.toml").write_text(f'url = "{service["url"]}"\ntoken = "{service["tokens"]["bob"]}"\n')
    running = start([path], tmp_path / "course" / A, tmp_path)
    expected = expected_output(wrong, left=9)
    proc = finish(running)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    assert [line.split()[:2] for line in proc.stdout.splitlines() if line.startswith("minibatches")] == [
        ["minibatches", "0"]]
    progress = proc.stderr.splitlines()[1:]
    assert progress and set(progress) <= {"queued (position 1)", "queued (position 2)", "grading"}, proc.stderr
    assert len(progress) == len(set(progress)), "one line per change"
    assert service["tokens"]["bob"] not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------- refusals
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    big = folder / "big.ipynb"
    big.write_bytes(b" " * (6 * 2**20))
    return {"reference": write_notebook(folder / "datasets.ipynb", source_notebook(A)),
            "json": write_notebook(folder / "notes.ipynb", {"a": 1}), "big": big, "folder": folder}


CASES = {   # name: (arguments, settings, words of the sentence)
    "no token": (["reference"], {"url": True}, ["no token", "course-service.toml", ".config/course/service.toml",
                                                "COURSE_SERVICE_TOKEN"]),
    "no address": (["reference"], {"token": "alice"}, ["no address", "COURSE_SERVICE_URL"]),
    "a token with a space": (["reference"], {"url": True, "token": "half of it"}, ["holds spaces",
                                                                                  "COURSE_SERVICE_TOKEN"]),
    "a wrong token": (["reference"], {"url": True, "token": "not-a-token"}, ["did not accept your token",
                                                                             "COURSE_SERVICE_TOKEN", "not valid"]),
    "an unreachable service": (["reference"], {"url": "closed", "token": "alice"}, ["cannot reach",
                                                                                    "connection was refused"]),
    "a name that is not known": (["reference"], {"url": "http://no-such-host.invalid", "token": "alice"},
                                 ["no-such-host.invalid is not known"]),
    "not a web address": (["reference"], {"url": "127.0.0.1:8765", "token": "alice"}, ["not a web address"]),
    "too large": (["big", "--assignment", A], {"url": True, "token": "alice"}, ["big.ipynb is too large",
                                                                              "larger than 5 MiB"]),
    "not a notebook": (["json", "--assignment", A], {"url": True, "token": "alice"},
                       ["notes.ipynb is not a notebook the service can grade", "not a Jupyter notebook"]),
    "another assignment": (["reference", "--assignment", "03-linear-regression"], {"url": True, "token": "alice"},
                           ["will not grade datasets.ipynb", "belongs to assignment 01-datasets"]),
    "an unknown assignment": (["reference", "--assignment", "99-nothing"], {"url": True, "token": "alice"},
                              ["unknown assignment '99-nothing'"]),
    "no such file": (["missing.ipynb"], {"url": True, "token": "alice"}, ["there is no file missing.ipynb"]),
    "no assignment known": (["json"], {"url": True, "token": "alice"}, ["cannot tell which assignment",
                                                                        "--assignment"]),
    "an unknown submission": (["--status", "0" * 32], {"url": True, "token": "alice"}, ["no submission"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_failure_is_one_sentence(service, files, case):
    args, given, words = CASES[case]
    named = {True: service["url"], "closed": f"http://127.0.0.1:{server.free_port()}"}
    url = named.get(given.get("url"), given.get("url"))
    token = service["tokens"].get(given.get("token"), given.get("token"))
    env = {k: v for k, v in (("COURSE_SERVICE_URL", url), ("COURSE_SERVICE_TOKEN", token)) if v}
    args = [files[a] if a in files else a for a in args]
    sentence = refusal(client(args, files["folder"], files["folder"], **env), *service["tokens"].values(),
                       *[token] if token else [])
    assert all(w in sentence for w in words), (case, sentence)


def test_one_in_flight_and_the_hourly_limit_are_explained(service, tmp_path):
    """carol's client while her previous submission is graded: 409; dave's eleventh submission within the hour:
    429, with when the next one is possible."""
    url, tokens = service["url"], service["tokens"]
    own = append_cell(source_notebook(A), "# carol's own run\nx = 1", index=None)
    first = server.submit(url, tokens["carol"], own, A)
    assert first.status_code == 202, first.text
    path = write_notebook(tmp_path / "datasets.ipynb", own)
    busy = client([path], tmp_path, tmp_path, COURSE_SERVICE_URL=url, COURSE_SERVICE_TOKEN=tokens["carol"])
    assert "still being graded" in refusal(busy, tokens["carol"])
    for _ in range(10):                           # the reference: answered from the result cache
        answer = server.submit(url, tokens["dave"], source_notebook(A), A)
        assert answer.status_code == 202, answer.text
        assert server.result(url, tokens["dave"], answer.json()["id"])["status"] == "done"
    path = write_notebook(tmp_path / "dave" / "datasets.ipynb", source_notebook(A))
    limited = refusal(client([path], tmp_path, tmp_path, COURSE_SERVICE_URL=service["url"],
                             COURSE_SERVICE_TOKEN=service["tokens"]["dave"]), service["tokens"]["dave"])
    assert "limit reached: 10 submissions of 01-datasets per hour" in limited and "possible at" in limited
    status = client(["--status", first.json()["id"]], tmp_path, tmp_path, COURSE_SERVICE_URL=service["url"],
                    COURSE_SERVICE_TOKEN=service["tokens"]["carol"])
    assert status.returncode == 0 and "total                13    13" in status.stdout, status.stderr


# --------------------------------------------------------------- answers the real service gives rarely
class Canned(http.server.BaseHTTPRequestHandler):
    """A stand-in service: each path answers what ``answers`` holds for it, as JSON."""

    answers = {}

    def reply(self):
        status, body, headers = self.answers.get(self.path.split("?")[0], (404, {"error": "no such page"}, {}))
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply()

    do_GET = reply

    def log_message(self, *_):
        pass


@pytest.fixture
def canned():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Canned.answers
    server.shutdown()
    server.server_close()
    Canned.answers = {}


def test_a_failed_grading_a_full_queue_and_a_timeout(canned, files):
    url, answers = canned
    env = {"COURSE_SERVICE_URL": url, "COURSE_SERVICE_TOKEN": "t0ken-of-erin"}
    nb = files["reference"]
    answers["/api/v1/submissions"] = (202, {"id": "abc", "status": "queued", "position": 1}, {})
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "failed", "assignment": A,
                                                "reason": "the grading machine failed: MemoryError"}, {})
    failed = refusal(client([nb], files["folder"], files["folder"], **env), "t0ken-of-erin", submitted=True)
    assert "could not be graded, through no fault of your notebook: the grading machine failed: MemoryError" in failed
    answers["/api/v1/submissions"] = (503, {"error": "the grading queue is full: submit again in a minute"},
                                      {"Retry-After": "60"})
    busy = refusal(client([nb], files["folder"], files["folder"], **env))
    assert "the service is busy: the grading queue is full" in busy and "try again after" in busy
    answers["/api/v1/submissions"] = (202, {"id": "abc", "status": "queued", "position": 3}, {})
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "queued", "position": 3, "assignment": A}, {})
    late = client([nb, "--timeout", "1.5"], files["folder"], files["folder"], **env)
    assert late.returncode == 3 and late.stdout == "", late.stderr
    assert "queued (position 3)" in late.stderr and "python -m course.submit --status abc" in late.stderr
    answers["/api/v1/submissions"] = (200, b"<html>a login page</html>", {})
    assert "something other than the grading service's JSON" in refusal(client([nb], files["folder"],
                                                                                files["folder"], **env))


def test_the_due_date_is_said_after_the_table(canned, files):
    url, answers = canned
    env = {"COURSE_SERVICE_URL": url, "COURSE_SERVICE_TOKEN": "t0ken-of-erin"}
    results = _reports()["all pass"].to_gradescope()
    answers["/api/v1/submissions"] = (202, {"id": "abc", "status": "queued", "position": 1, "late": True}, {})
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "done", "assignment": A, "results": results}, {})
    answers["/api/v1/assignments"] = (200, {"per_hour": 10, "assignments": [
        {"assignment": A, "due": "2027-01-15T23:59:00+01:00", "past_due": True, "after_due_date":
         "accepted, marked late", "used_this_hour": 3, "left_this_hour": 7}]}, {})
    done = client([files["reference"]], files["folder"], files["folder"], **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"7 of 10 submissions of {A} left this hour. It is due 2027-01-15 23:59 (UTC+01:00): "
                                "that has passed, submissions are accepted, marked late.\n"), done.stdout
    assert "after the due date: it is marked late" in done.stderr


# --------------------------------------------------------------------------------------------- the table
def _reports():
    feedback = ["minibatches(X, y, 4) gave no batch: it should yield batches of (X, y) covering every sample once.",
                "a second line that the table leaves out"]
    tasks = lambda scores: [TaskResult(t, f"Title of {t}", most, score, [] if score == most else feedback)  # noqa
                            for (t, most), score in zip([("regression_data", 2), ("split_loaders", 1.5),
                                                         ("pair_dataset", 2)], scores)]
    long = [TaskResult(f"long_{n}", "Long feedback", 1, 0, ["x" * n]) for n in (100, 101, 150)]
    return {
        "all pass": Report(assignment=A, tasks=tasks([2, 1.5, 2])),
        "some fail": Report(assignment=A, tasks=tasks([2, 0, 0]) + long,
                            messages=["Note: cell 7, line 2 raised ValueError: bad", "Note: cell 9 stopped or hung "
                                      "the Python process, so it was left out when grading."]),
        "an error with tasks": Report(assignment=A, tasks=tasks([0, 0, 0]),
                                      error="Grading could not run: the sandbox died. This is a fault of the grading "
                                            "machine; tell the staff.", messages=["Note: cell 3 raised KeyError: 'a'"]),
        "an error alone": Report(assignment=A, error="Grading could not run: RuntimeError: no box\nsecond line"),
        "no sandbox": Report(assignment=A, tasks=tasks([2, 1.5, 0]), messages=[
            "WARNING: this submission was graded WITHOUT a sandbox (--unsafe-no-sandbox)."]),
    }


@pytest.mark.parametrize("name", sorted(_reports()))
def test_the_clients_table_is_the_clis(name):
    report = _reports()[name]
    assert submit.table(report.to_gradescope(), report.assignment) == report.table()


def test_an_error_makes_a_nonzero_exit():
    assert submit.split_output(_reports()["an error with tasks"].to_gradescope()["output"])[0].startswith("Grading")
    assert submit.split_output(_reports()["some fail"].to_gradescope()["output"])[0] is None


# ------------------------------------------------------------------------------------------- settings
def test_settings_come_from_the_environment_then_the_nearest_file(tmp_path):
    home, work = tmp_path / "home", tmp_path / "class" / A
    work.mkdir(parents=True)
    (home / ".config" / "course").mkdir(parents=True)
    (home / ".config" / "course" / "service.toml").write_text('url = "https://home.example"\ntoken = "home"\n')
    notebook = str(work / "datasets.ipynb")
    found = submit.settings(notebook, environ={}, home=str(home))
    assert (found.url, found.token, found.token_from) == ("https://home.example", "home",
                                                         str(home / ".config" / "course" / "service.toml"))
    (tmp_path / "class" / "course-service.toml").write_text('token = "class"  # from the instructor\n')
    found = submit.settings(notebook, environ={}, home=str(home))
    assert (found.url, found.token) == ("https://home.example", "class")
    assert found.token_from == str(tmp_path / "class" / "course-service.toml")
    found = submit.settings(notebook, environ={"COURSE_SERVICE_TOKEN": "env"}, home=str(home))
    assert (found.token, found.token_from) == ("env", "the environment variable COURSE_SERVICE_TOKEN")
    assert found.searched[0] == str(work / "course-service.toml") and found.searched[-1].startswith(str(home))


def test_a_config_file_is_read_without_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the two keys are still read."""
    path = tmp_path / "course-service.toml"
    path.write_text('# the course\nurl = "https://grading.example"\ntoken = \'abc\'  # mine\n')
    monkeypatch.setitem(sys.modules, "tomllib", None)
    assert submit.read_config(str(path)) == {"url": "https://grading.example", "token": "abc"}


def test_a_broken_config_file_is_named(tmp_path):
    path = tmp_path / "course-service.toml"
    path.write_text('url = https://grading.example\n')
    with pytest.raises(submit.Failure, match="course-service.toml is not valid TOML"):
        submit.read_config(str(path))


def test_the_client_needs_only_the_standard_library():
    """Bundles hold no autograder, and the client must not wait for torch."""
    proc = subprocess.run([sys.executable, "-c", "import sys, course.submit; print(sorted(m for m in sys.modules "
                           "if m.split('.')[0] in ('autograder', 'torch', 'numpy', 'httpx')))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
