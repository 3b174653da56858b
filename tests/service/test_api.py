"""The grading service's API against a real server process on 127.0.0.1 (`python -m autograder serve` in a
course folder), on SQLite and on PostgreSQL: a submission is graded like the CLI grades it, an unchanged one
comes from the result cache, and every refusal is a JSON message with its status."""
import json
import os
import re
import socket
import time

import httpx
import pytest

from autograder.service import store
from tests.notebooks import append_cell, grade, source_notebook
from tests.service import server

A = "01-datasets"
ODD = "Zoë O'Brien; DROP TABLE students;--"     # a valid id: printable, no path separators
pytestmark = pytest.mark.xdist_group("service")
_GRADED = {}                     # the CLI's scores of a notebook, graded once for both databases


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course folder: shared by the runs on both databases, and so is its result cache (the grading is the
    same; the database differs)."""
    return tmp_path_factory.mktemp("service-course")


@pytest.fixture(scope="module")
def service(course, database_url):
    """The service on a new database holding three students and an instructor, each with a token."""
    engine = store.open_store(database_url)
    store.add_students(engine, ["alice", "bob", "carol", ODD])
    tokens = {name: store.issue_token(engine, name) for name in ("alice", "bob", "carol", ODD)}
    tokens["prof"] = store.issue_token(engine, "prof", role="instructor")
    engine.dispose()
    log = open(course / "service.log", "a")
    port = server.free_port()
    proc = server.start(course, port, "--db", database_url, log=log)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "folder": course,
               "database": engine.dialect.name}
    finally:
        server.stop(proc)
        log.close()


def _submit(service, student, nb, assignment=A):
    return server.submit(service["url"], service["tokens"][student], nb, assignment)


def _result(service, student, submission_id, patience=180):
    """The submission's view once it is done or failed (polling as a student's client would)."""
    return server.result(service["url"], service["tokens"][student], submission_id, patience)


def _scores(results):
    return results["score"], [(t["name"], t["score"], t["max_score"]) for t in results["tests"]]


def _cli_scores(nb):
    """The scores the CLI gives ``nb`` (graded once for both databases)."""
    key = json.dumps(nb, sort_keys=True)
    if key not in _GRADED:
        _GRADED[key] = _scores(grade(nb).to_gradescope())
    return _GRADED[key]


def test_a_submission_is_graded_like_the_cli_and_an_unchanged_one_comes_from_the_cache(service):
    wrong = append_cell(source_notebook(A), "def minibatches(X, y, batch_size, shuffle=True, seed=None):\n"
                                            "    return []", index=None)
    for nb in (source_notebook(A), wrong):
        answer = _submit(service, "alice", nb)
        assert answer.status_code == 202, answer.text
        accepted = answer.json()
        assert accepted["status"] == "queued" and accepted["position"] >= 1 and len(accepted["id"]) == 32
        view = _result(service, "alice", accepted["id"])
        assert view["status"] == "done", view
        assert _scores(view["results"]) == _cli_scores(nb)
        assert "def test_" not in json.dumps(view) and "check_task" not in json.dumps(view)
    started = time.monotonic()
    again = _result(service, "alice", _submit(service, "alice", wrong).json()["id"])
    assert again["status"] == "done" and _scores(again["results"]) == _scores(view["results"])
    assert time.monotonic() - started < 5, "an unchanged notebook is answered from the result cache"
    assert os.listdir(service["folder"] / ".autograder" / A / "results"), "the cache autograde reads"


def test_refusals_are_json_with_their_status(service):
    url, nb = service["url"], source_notebook(A)
    body = json.dumps(nb).encode()
    submissions = f"{url}/api/v1/submissions"
    cases = {
        "no token": httpx.post(submissions, params={"assignment": A}, content=body),
        "a wrong token": httpx.post(submissions, params={"assignment": A}, content=body,
                                    headers={"Authorization": "Bearer not-a-token"}),
        "not JSON": httpx.post(
            submissions, params={"assignment": A}, content=b"\x89PNG...",
            headers={"Authorization": f"Bearer {service['tokens']['bob']}"}),
        "JSON, not a notebook": httpx.post(submissions, params={"assignment": A}, content=b'{"a": 1}',
                                           headers={"Authorization": f"Bearer {service['tokens']['bob']}"}),
        "an unknown assignment": _submit(service, "bob", nb, assignment="99-nothing"),
        "another lesson's notebook": _submit(service, "bob", source_notebook("03-linear-regression")),
        "too large": httpx.post(submissions, params={"assignment": A}, content=b"x" * (6 * 2**20),
                                headers={"Authorization": f"Bearer {service['tokens']['bob']}"}),
        "an unknown submission": httpx.get(f"{submissions}/{'0' * 32}",
                                           headers={"Authorization": f"Bearer {service['tokens']['bob']}"}),
    }
    expected = {"no token": (401, "no token"), "a wrong token": (401, "not valid"), "not JSON": (400, "not JSON"),
                "JSON, not a notebook": (400, "not a Jupyter notebook"),
                "an unknown assignment": (422, "unknown assignment"),
                "another lesson's notebook": (422, "03-linear-regression"),
                "too large": (413, "larger than 5 MiB"), "an unknown submission": (404, "no submission")}
    for name, answer in cases.items():
        status, words = expected[name]
        assert answer.status_code == status and words in answer.json()["error"], (name, answer.status_code,
                                                                                   answer.text)


def test_a_student_cannot_read_anothers_result_and_waits_for_their_own(service):
    # new to the result cache (the run on the other database has its own), so still being graded when she resubmits
    nb = append_cell(source_notebook(A), f"# carol's own run on {service['database']}\nx = 1", index=None)
    first = _submit(service, "carol", nb)
    assert first.status_code == 202, first.text
    second = _submit(service, "carol", append_cell(nb, "y = 2", index=None))
    assert second.status_code == 409 and "still being graded" in second.json()["error"]
    peek = httpx.get(f"{service['url']}/api/v1/submissions/{first.json()['id']}",
                     headers={"Authorization": f"Bearer {service['tokens']['bob']}"})
    assert peek.status_code == 403 and "another student's" in peek.json()["error"]
    assert _result(service, "carol", first.json()["id"])["status"] == "done"


def test_a_huge_declared_body_is_refused_before_it_is_read(service):
    port = int(service["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall((f"POST /api/v1/submissions?assignment={A} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Authorization: Bearer {service['tokens']['bob']}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {200 * 2**20}\r\n\r\n").encode() + b'{"cells": [')
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
                re.search(rb"content-length: (\d+)", reply, re.I).group(1)):
            piece = connection.recv(4096)              # the reply's head and body may come in pieces
            if not piece:
                break
            reply += piece
        reply = reply.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413") and "larger than 5 MiB" in reply, reply[:300]


def _get(service, path, who):
    return httpx.get(f"{service['url']}{path}", headers={"Authorization": f"Bearer {service['tokens'][who]}"},
                     timeout=30)


def test_submissions_per_hour_are_limited_and_counted(service):
    """bob resubmits the reference (answered from the cache) until the hourly limit: the next is refused (429)
    with when it resets, and his list of assignments says how many he has left."""
    nb = source_notebook(A)
    for _ in range(10):
        answer = _submit(service, "bob", nb)
        assert answer.status_code == 202, answer.text
        assert _result(service, "bob", answer.json()["id"])["status"] == "done"
    refused = _submit(service, "bob", nb)
    assert refused.status_code == 429 and "per hour" in refused.json()["error"], refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 3601
    listed = _get(service, "/api/v1/assignments", "bob").json()
    row = next(r for r in listed["assignments"] if r["assignment"] == A)
    assert listed["per_hour"] == 10 and row["used_this_hour"] == 10 and row["left_this_hour"] == 0


def test_instructor_reads_the_class_and_tokens_stay_in_their_role(service):
    latest = _get(service, f"/api/v1/assignments/{A}/submissions", "prof")
    assert latest.status_code == 200, latest.text
    students = latest.json()["students"]
    assert {"alice", "bob"} <= set(students) and students["bob"]["score"] == 13
    stats = _get(service, f"/api/v1/assignments/{A}/stats", "prof").json()
    tasks = stats["tasks"]
    assert tasks["minibatches"]["failures"], tasks["minibatches"]          # alice's wrong minibatches
    assert tasks["regression_data"]["pass_rate"] == 1.0 and tasks["regression_data"]["median_attempts_to_pass"] == 1
    assert "def test_" not in json.dumps(stats)
    for path in (f"/api/v1/assignments/{A}/submissions", f"/api/v1/assignments/{A}/stats"):
        answer = _get(service, path, "alice")
        assert answer.status_code == 403 and "instructor" in answer.json()["error"]
    as_student = _submit(service, "prof", source_notebook(A))
    assert as_student.status_code == 403 and "instructor" in as_student.json()["error"]
    assert _get(service, "/api/v1/assignments/99-x/stats", "prof").status_code == 422


def test_paths_and_odd_ids_never_reach_a_file_or_a_query(service):
    """Traversal in every place a path segment or parameter is read is a plain 404 or 422, and a student whose
    id is odd (quotes, SQL, accents) is served like anyone else."""
    submissions = f"{service['url']}/api/v1/submissions"
    headers = {"Authorization": f"Bearer {service['tokens']['bob']}"}
    prof = {"Authorization": f"Bearer {service['tokens']['prof']}"}
    for path in ("..%2F..%2Fgrading-service.db", "%2e%2e", "../../etc/passwd"):
        answer = httpx.get(f"{submissions}/{path}", headers=headers)
        assert answer.status_code == 404 and answer.json()["error"], (path, answer.text)
    for assignment in ("../01-datasets", "..", "01-datasets/../../x", "/etc"):
        answer = httpx.post(submissions, params={"assignment": assignment}, headers=headers,
                            content=json.dumps(source_notebook(A)).encode())
        assert answer.status_code == 422 and "unknown assignment" in answer.json()["error"], (assignment, answer.text)
        stats = httpx.get(f"{service['url']}/api/v1/assignments/{assignment.replace('/', '%2F')}/stats", headers=prof)
        assert stats.status_code in (404, 422) and stats.json()["error"], (assignment, stats.text)
    assert not (service["folder"] / ".autograder" / "x").exists() and not os.path.exists("/x")
    accepted = _submit(service, ODD, source_notebook(A))
    assert accepted.status_code == 202, accepted.text
    view = _result(service, ODD, accepted.json()["id"])
    assert view["status"] == "done" and view["student"] == ODD and view["results"]["score"] == 13
    latest = _get(service, f"/api/v1/assignments/{A}/submissions", "prof").json()["students"]
    assert latest[ODD]["score"] == 13


def test_no_token_reaches_the_services_log(service):
    _get(service, "/api/v1/assignments", "alice")
    said = (service["folder"] / "service.log").read_text()
    assert "grading service on http://127.0.0.1" in said
    assert not [name for name, token in service["tokens"].items() if token in said]
