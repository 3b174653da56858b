"""The instructor's page of a class at /dashboard/A: shown only for an instructor's token (a header, or the
HttpOnly cookie its sign-in form sets), with the class's numbers as the report command computes them."""
import pytest
from fastapi.testclient import TestClient

from autograder.service import store
from autograder.service.app import COOKIE, make_app
from autograder.service.settings import load_settings
from tests.classroom.test_class_report import _results

A = "01-datasets"
pytestmark = pytest.mark.xdist_group("service")


@pytest.fixture
def app(tmp_path):
    """The service's app (no grading runs) over a class of three graded submissions; its tokens."""
    engine = store.open_store("sqlite:///" + str(tmp_path / "service.db"))
    store.add_students(engine, ["ann", "ben", "kim"])
    tokens = {name: store.issue_token(engine, name) for name in ("ann", "ben")}
    tokens["prof"] = store.issue_token(engine, "prof", role="instructor")
    outputs = {"minibatches": "Task minibatches failed:\n- 3 of 12 samples are missing from an epoch"}
    for student, passed in (("ann", True), ("ben", False), ("ben", True)):
        submission_id, _ = store.accept(engine, student, A, f"{student}{passed}".encode(), "k" * 64)
        store.claim(engine)
        store.finish(engine, submission_id, _results({"regression_data": True, "minibatches": passed}, outputs))
    return TestClient(make_app(engine, load_settings(tmp_path))), tokens


def test_without_an_instructors_token_the_page_is_a_sign_in_form(app):
    client, tokens = app
    for headers in ({}, {"Authorization": f"Bearer {tokens['ann']}"}, {"Authorization": "Bearer nonsense"}):
        page = client.get(f"/dashboard/{A}", headers=headers)
        assert page.status_code == 401 and '<form method="post"' in page.text and "<svg" not in page.text
        assert "minibatches" not in page.text
    assert client.get("/dashboard/99-nothing", headers={"Authorization": f"Bearer {tokens['prof']}"}
                      ).status_code == 422


def test_signing_in_sets_an_httponly_cookie_that_opens_the_page(app):
    client, tokens = app
    wrong = client.post("/dashboard/login", data={"token": tokens["ann"], "assignment": A}, follow_redirects=False)
    assert wrong.status_code == 401 and "not a valid instructor token" in wrong.text and COOKIE not in wrong.cookies
    signed = client.post("/dashboard/login", data={"token": tokens["prof"], "assignment": A}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == f"/dashboard/{A}"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    page = client.get(f"/dashboard/{A}")                        # the client keeps the cookie, as a browser does
    assert page.status_code == 200 and page.text.count("<svg") == 3 and "<script" not in page.text
    assert "50% (1/2)" not in page.text and "100% (2/2)" in page.text       # ben's latest passes minibatches
    assert "# of # samples are missing from an epoch" in page.text and "kim" in page.text   # kim never submitted
    assert page.headers["cache-control"] == "no-store"


def test_a_bearer_token_opens_the_page_for_scripts(app):
    client, tokens = app
    page = client.get(f"/dashboard/{A}", headers={"Authorization": f"Bearer {tokens['prof']}"})
    assert page.status_code == 200 and "mean attempts to pass" in page.text
