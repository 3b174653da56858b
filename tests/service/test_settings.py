"""The grading service's settings from the course's nbgrader_config.py: limits, due dates (accepted and marked
late, or refused), nbgrader's own due dates, and a bad setting stopping the service with a message."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from autograder.service import store
from autograder.service.app import make_app
from autograder.service.settings import SettingsError, load_settings
from tests.notebooks import ROOT, source_notebook
from tests.service import server

A = "01-datasets"
pytestmark = pytest.mark.xdist_group("service")


def test_without_a_config_the_defaults_hold(tmp_path):
    settings = load_settings(tmp_path)
    assert (settings.per_hour, settings.in_flight_per_student, settings.max_bytes, settings.max_queue) == (
        10, 1, 5 * 2**20, 200)
    assert settings.due == {} and not settings.refuse_late and not settings.is_late(A, datetime.now(timezone.utc))


def test_the_course_config_sets_limits_and_due_dates_in_its_time_zone(tmp_path):
    settings = load_settings(server.configure(tmp_path, """
        c.GradingService.per_hour = 3
        c.GradingService.max_notebook_mib = 0.5
        c.GradingService.timezone = "Europe/Berlin"
        c.GradingService.due_dates = {"01-datasets": "2027-01-15 23:59", "02-tensorboard": "2027-01-22T12:00+00:00"}
        c.GradingService.after_due_date = "refuse"
    """))
    assert settings.per_hour == 3 and settings.max_bytes == 2**19 and settings.refuse_late
    due = settings.due_date(A)
    assert due.utcoffset() == timedelta(hours=1) and due.astimezone(timezone.utc).hour == 22   # CET in January
    assert settings.due_date("02-tensorboard") == datetime(2027, 1, 22, 12, tzinfo=timezone.utc)
    assert settings.is_late(A, datetime(2027, 1, 15, 23, 0, tzinfo=timezone.utc))
    assert not settings.is_late(A, datetime(2027, 1, 15, 22, 58, tzinfo=timezone.utc))
    assert not settings.is_late(A, datetime(2027, 1, 15, 22, 58))      # a naive moment is UTC (SQLite's)


@pytest.mark.parametrize("line, words", [
    ('c.GradingService.per_hour = 0', "per_hour must be at least 1"),
    ('c.GradingService.per_hour = "ten"', "per_hour"),
    ('c.GradingService.max_notebook_mib = 500', "max_notebook_mib"),
    ('c.GradingService.timezone = "Mars/Olympus"', "not a time zone"),
    ('c.GradingService.due_dates = {"01-datasets": "next friday"}', "is not a date"),
    ('c.GradingService.due_dates = {"01-dataset": "2027-01-15"}', "names no assignment of this course: 01-dataset"),
    ('c.GradingService.after_due_date = "maybe"', "after_due_date"),
])
def test_a_bad_setting_is_named(tmp_path, line, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(server.configure(tmp_path, line))


def test_a_bad_setting_stops_the_service_before_it_starts(tmp_path):
    server.configure(tmp_path, 'c.GradingService.due_dates = {"01-datasets": "soon"}')
    proc = subprocess.run([sys.executable, "-m", "autograder", "serve", "--port", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 2 and "error: c.GradingService.due_dates['01-datasets'] = 'soon'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / store.DEFAULT_DB_FILE).exists()


def test_nbgrader_due_dates_count_where_the_config_sets_none(tmp_path, monkeypatch):
    import nbgrader.api
    from nbgrader.api import Gradebook

    from autograder.distribute.release import alembic_head

    monkeypatch.setattr(nbgrader.api, "get_alembic_version", alembic_head)   # as nbgrader_config.py does

    with Gradebook("sqlite:///" + str(tmp_path / "gradebook.db")) as gradebook:
        gradebook.add_assignment(A, duedate=datetime(2027, 2, 1, 9, 0))      # nbgrader keeps naive UTC
        gradebook.add_assignment("02-tensorboard", duedate=datetime(2027, 2, 8, 9, 0))
    settings = load_settings(server.configure(tmp_path, 'c.GradingService.due_dates = {"02-tensorboard": "2027-03-01"}'))
    assert settings.due_date(A) == datetime(2027, 2, 1, 9, tzinfo=timezone.utc)
    assert settings.due_date("02-tensorboard") == datetime(2027, 3, 1, tzinfo=timezone.utc)   # the config wins


def _client(tmp_path, settings_lines):
    """A student's token and a client of the app (no dispatcher runs: submissions stay queued)."""
    engine = store.open_store("sqlite:///" + str(tmp_path / "service.db"))
    store.add_students(engine, ["dana", "eve"])
    settings = load_settings(server.configure(tmp_path, settings_lines))
    tokens = {name: store.issue_token(engine, name) for name in ("dana", "eve")}
    return TestClient(make_app(engine, settings)), tokens, engine


def _post(client, token, nb=None):
    return client.post("/api/v1/submissions", params={"assignment": A}, content=json.dumps(nb or source_notebook(A)),
                       headers={"Authorization": f"Bearer {token}"})


def test_after_the_due_date_a_submission_is_marked_late_or_refused(tmp_path):
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    client, tokens, _ = _client(tmp_path, f'c.GradingService.due_dates = {{"{A}": "{past}", '
                                       f'"02-tensorboard": "{future}"}}')
    accepted = _post(client, tokens["dana"])
    assert accepted.status_code == 202 and accepted.json()["late"] is True, accepted.text
    view = client.get(f"/api/v1/submissions/{accepted.json()['id']}",
                      headers={"Authorization": f"Bearer {tokens['dana']}"}).json()
    assert view["late"] is True and view["due"].startswith(past[:16])
    listed = client.get("/api/v1/assignments", headers={"Authorization": f"Bearer {tokens['dana']}"}).json()
    rows = {row["assignment"]: row for row in listed["assignments"]}
    assert rows[A]["past_due"] and not rows["02-tensorboard"]["past_due"] and rows["03-linear-regression"]["due"] is None
    assert rows[A]["after_due_date"] == "accepted, marked late"

    (tmp_path / "strict").mkdir()
    strict, tokens, engine = _client(tmp_path / "strict", f'c.GradingService.due_dates = {{"{A}": "{past}"}}\n'
                                                          'c.GradingService.after_due_date = "refuse"')
    refused = _post(strict, tokens["eve"])
    assert refused.status_code == 403 and "takes no submissions after the due date" in refused.json()["error"]
    assert store.class_submissions(engine, A) == [], "a refused submission is not recorded"


def test_a_notebook_over_the_configured_size_is_refused_with_that_size(tmp_path):
    client, tokens, _ = _client(tmp_path, "c.GradingService.max_notebook_mib = 0.25")
    big = source_notebook(A)
    big["cells"][0]["source"] += "\n" + "x" * 2**18
    refused = _post(client, tokens["dana"], big)
    assert refused.status_code == 413 and "larger than 0.25 MiB" in refused.json()["error"], refused.text
    assert _post(client, tokens["dana"]).status_code == 202


def test_under_a_prefix_the_api_moves_and_every_other_path_answers_json(tmp_path):
    engine = store.open_store("sqlite:///" + str(tmp_path / "service.db"))
    store.add_students(engine, ["dana"])
    token = store.issue_token(engine, "dana")
    client = TestClient(make_app(engine, load_settings(tmp_path), prefix="/services/grading/"))
    moved = client.post("/services/grading/api/v1/submissions", params={"assignment": A},
                        content=json.dumps(source_notebook(A)), headers={"Authorization": f"Bearer {token}"})
    assert moved.status_code == 202, moved.text
    for method, path in (("post", "/api/v1/submissions"), ("get", "/services/grading/api/v2/x"), ("get", "/")):
        answer = getattr(client, method)(path)
        assert answer.status_code == 404 and "/services/grading/api/v1/" in answer.json()["error"], answer.text
    wrong_method = client.delete("/services/grading/api/v1/assignments")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    client, tokens, engine = _client(tmp_path, "c.GradingService.max_queue = 1")
    assert _post(client, tokens["dana"]).status_code == 202
    full = _post(client, tokens["eve"])
    assert full.status_code == 503 and "queue is full" in full.json()["error"] and full.headers["Retry-After"] == "60"
    assert [row["student"] for row in store.class_submissions(engine, A)] == ["dana"], "a refusal is not recorded"
