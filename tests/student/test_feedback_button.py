"""The Submit for feedback button, in a real browser (Debian's Chromium, through Playwright).

A grading service and the student's JupyterLab (a bundle of 01-datasets, started as its README says) run on
loopback. The notebook on disk has one task filled wrongly (``blobs_data`` ignores ``spread``); the student
types the correct ``regression_data`` in the browser and, without saving, presses Submit for feedback. The
panel must show the service's points for every task (so the notebook was saved first: the typed task has full
points), the wrong task's feedback, the total, the submissions left this hour, and no hidden test code; a click
on a task shows its heading in the notebook; the token never reaches the browser. Then, with the service
stopped, the panel says it cannot reach it; with no service set up, it says how to set one up. Screenshots go
to ``$COURSE_ARTIFACTS``.
"""
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.browser import BROWSER_TEST, browser_page
from tests.jupyter import STARTUP_S, jupyter_server
from tests.lessons.test_datasets import MISTAKES
from tests.service import server
from tests.service.test_submit_client import A, canned  # noqa: F401 - canned: the stand-in service
from tests.student.test_jupyterlab import reference_solution, write_lab_settings

ASSIGNMENT, NOTEBOOK = "01-datasets", "datasets.ipynb"
TYPED, WRONG = "regression_data", "blobs_data"
GRADING_S = 300                 # generous: the machine may be busy with other tests
HIDDEN = ("BEGIN HIDDEN TESTS", "def test_", "check_task", "autograder", "assert ")

pytestmark = BROWSER_TEST

PANEL_JS = """() => {
    const panel = document.querySelector('.jp-CourseFeedback');
    if (!panel) return null;
    const rows = Array.from(panel.querySelectorAll('tr.jp-CourseFeedback-task')).map(row => ({
        task: row.dataset.task,
        score: Number(row.querySelector('.jp-CourseFeedback-score').textContent),
        max: Number(row.querySelector('.jp-CourseFeedback-max').textContent)}));
    const feedback = {};
    for (const row of panel.querySelectorAll('tr.jp-CourseFeedback-feedbackRow')) feedback[row.dataset.task] = row.innerText;
    const text = sel => (panel.querySelector(sel) || {}).innerText || '';
    return {rows, feedback, total: text('.jp-CourseFeedback-total'), left: text('.jp-CourseFeedback-left'),
            error: text('.jp-CourseFeedback-error'), text: panel.innerText};
}"""


def wrong_solution():
    """The reference solution of WRONG with a known mistake (spread ignored)."""
    task, old, new = MISTAKES["spread_ignored"]
    assert task == WRONG
    solution = reference_solution(WRONG)
    assert old in solution
    return solution.replace(old, new)


@pytest.fixture
def course(tmp_path):
    """A grading service on loopback, 5 submissions an hour: yields (url, token, log path)."""
    folder = tmp_path / "course"
    folder.mkdir()
    server.configure(folder, "c.GradingService.per_hour = 5\n")
    token = server.enrol(folder, ["ann"])["ann"]
    port, log = server.free_port(), tmp_path / "service.log"
    with open(log, "w") as handle:
        proc = server.start(folder, port, "--jobs", "1", log=handle)
    try:
        yield f"http://127.0.0.1:{port}", token, proc
    finally:
        server.stop(proc)


@pytest.fixture
def bundle(tmp_path):
    """The student's bundle of ASSIGNMENT with the extension built in, and WRONG filled wrongly on disk."""
    from autograder.distribute.bundle import write_bundle
    from autograder.distribute.labextension import built

    if built() is None:
        if shutil.which("node") is None:
            pytest.skip("Node.js is not installed, so the JupyterLab extension cannot be built")
        pytest.fail("the JupyterLab extension is not built: run python -m autograder build-lab (./setup.sh does)")
    folder = Path(write_bundle(ASSIGNMENT, str(tmp_path / "bundle")))
    assert (folder / "course" / "labextension" / "course-feedback" / "package.json").is_file()
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{WRONG}_code")
    cell.source = wrong_solution()
    nbformat.write(nb, folder / NOTEBOOK)
    return folder


@pytest.fixture
def lab(bundle, tmp_path):
    """The student's JupyterLab over the bundle, with its Jupyter settings: yields (base url, token)."""
    readme = (bundle / "README.md").read_text()
    setting = re.search(r"^JUPYTER_CONFIG_PATH=(\S+) \.venv/bin/python -m jupyter lab ", readme, re.M)
    assert setting, "the README starts JupyterLab with the bundle's Jupyter settings"
    settings = tmp_path / "lab-settings"
    write_lab_settings(settings)
    env = {k: v for k, v in os.environ.items()
           if k not in ("COURSE_GRADING", "COURSE_QUICK", "COURSE_SERVICE_URL", "COURSE_SERVICE_TOKEN")}
    env.update(JUPYTER_CONFIG_PATH=setting.group(1), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HOME=str(tmp_path / "home"))
    with jupyter_server("lab", bundle, env, tmp_path / "lab.log", f"--LabApp.user_settings_dir={settings}",
                        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}") as (base, token):
        yield base, token


def panel_state(page):
    """What the feedback panel shows (None while there is none)."""
    return page.evaluate(PANEL_JS)


def wait_for_panel(page, selector, patience):
    """Wait until the panel shows ``selector``; its state."""
    page.locator(f".jp-CourseFeedback {selector}").first.wait_for(timeout=patience * 1000)
    return panel_state(page)


def test_submit_for_feedback_shows_each_tasks_result_beside_the_notebook(course, bundle, lab, tmp_path):
    url, token, service = course
    base, lab_token = lab
    (bundle / "course-service.toml").write_text(f'url = "{url}"\ntoken = "{token}"\n')
    artifacts = Path(os.environ.get("COURSE_ARTIFACTS") or tmp_path / "screenshots")
    artifacts.mkdir(parents=True, exist_ok=True)
    seen = []              # every answer of the button's handlers, as the browser got it

    def shot(page, name):
        page.screenshot(path=str(artifacts / f"feedback-button-{name}.png"))

    with browser_page(base, (1500, 900), on_failure=lambda page: shot(page, "failure")) as page:
        page.on("response", lambda r: seen.append((r.url, r.text())) if "/course-feedback/" in r.url else None)
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={lab_token}", timeout=STARTUP_S * 1000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=STARTUP_S * 1000)
        button = page.locator(".jp-NotebookPanel .jp-Toolbar-item", has_text="Submit for feedback")
        try:
            button.first.wait_for(timeout=60_000)
        except Exception:
            raise AssertionError("the notebook's toolbar has no Submit for feedback button") from None
        assert button.count() == 1, "the notebook's toolbar has more than one Submit for feedback button"

        # 1. Type the correct regression_data (not saved), press the button: the panel shows progress.
        nb = nbformat.read(bundle / NOTEBOOK, as_version=4)
        typed = next(i for i, c in enumerate(nb.cells)
                     if c.metadata.get("nbgrader", {}).get("grade_id") == f"{TYPED}_code")
        editor = page.locator(".jp-NotebookPanel .jp-Cell").nth(typed).locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.evaluate("text => navigator.clipboard.writeText(text)", reference_solution(TYPED))
        page.keyboard.press("Control+v")
        button.locator("button").click()
        page.locator(".jp-CourseFeedback-progress").first.wait_for(timeout=30_000)
        shot(page, "1-progress")

        # 2. The results: every task's points as the service gave them, the wrong task's feedback.
        state = wait_for_panel(page, ".jp-CourseFeedback-tasks, .jp-CourseFeedback-error", GRADING_S)
        shot(page, "2-results")
        assert not state["error"], state["error"]
        accepted = [json.loads(body) for where, body in seen if where.split("?")[0].endswith("/submissions")]
        assert len(accepted) == 1 and accepted[0]["id"], accepted
        view = server.result(url, token, accepted[0]["id"])
        expected = [{"task": t["name"].split(":")[0], "score": t["score"], "max": t["max_score"]}
                    for t in view["results"]["tests"]]
        assert state["rows"] == expected, "the panel's points differ from the service's"
        points = {row["task"]: row for row in state["rows"]}
        assert points[TYPED]["score"] == points[TYPED]["max"] > 0, \
            "the task typed in the browser lost points: was the notebook saved before it was sent?"
        assert 0 <= points[WRONG]["score"] < points[WRONG]["max"], points[WRONG]
        wrong_feedback = next(t["output"] for t in view["results"]["tests"] if t["name"].startswith(WRONG))
        assert wrong_feedback.strip() and wrong_feedback.strip() in state["feedback"][WRONG].strip() + "\n", \
            (wrong_feedback, state["feedback"])
        total = sum(r["score"] for r in state["rows"]), sum(r["max"] for r in state["rows"])
        assert re.search(rf"total\s+{total[0]:g}\s+{total[1]:g}", state["total"]), state["total"]
        assert "4 of 5 submissions of 01-datasets left this hour" in state["left"], state["left"]
        for hidden in HIDDEN:
            assert hidden not in state["text"], f"the panel shows grader code ({hidden!r})"

        # 3. A click on a task shows its heading in the notebook.
        page.locator(f".jp-CourseFeedback-task[data-task='{WRONG}'] a").click()
        heading = next(i for i in range(len(nb.cells) - 1, -1, -1) if i < typed + 8 and
                       nb.cells[i].cell_type == "markdown" and "Gaussian blobs" in nb.cells[i].source)
        active = page.locator(".jp-NotebookPanel .jp-Cell.jp-mod-active")
        page.wait_for_function(
            "i => document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[i].classList.contains('jp-mod-active')",
            arg=heading, timeout=10_000)
        assert "Gaussian blobs" in active.inner_text()
        shot(page, "3-task-shown")

        # 4. The service stopped: the panel says it cannot be reached.
        server.stop(service)
        button.locator("button").click()
        state = wait_for_panel(page, ".jp-CourseFeedback-error", 60)
        shot(page, "4-service-stopped")
        assert "cannot reach the grading service" in state["error"].lower(), state["error"]
        assert "refused" in state["error"], state["error"]

        # 5. No service set up: the panel says how to set one up.
        (bundle / "course-service.toml").unlink()
        button.locator("button").click()
        # waits for this answer's own words: step 4's error names course-service.toml too
        page.wait_for_function("() => (document.querySelector('.jp-CourseFeedback-error') || {}).innerText"
                               "?.includes('No grading service is set up')", timeout=30_000)
        state = panel_state(page)
        shot(page, "5-no-service")
        assert "No grading service is set up for this notebook" in state["error"], state["error"]
        assert 'url = "https://grading.example.org"' in state["error"], state["error"]
    assert seen, "the button's answers were not seen"
    for _, body in seen:
        assert token not in body, "the student's token reached the browser"


# ------------------------------------------------------------- the button's server side, every answer it gives
@pytest.fixture
def bundle_server(tmp_path):
    """A Jupyter server over a bundle of ASSIGNMENT with the bundle's settings (no browser): (base, token, folder)."""
    from autograder.distribute.bundle import write_bundle

    folder = Path(write_bundle(ASSIGNMENT, str(tmp_path / "bundle")))
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_SERVICE_URL", "COURSE_SERVICE_TOKEN")}
    env.update(JUPYTER_CONFIG_PATH=str(folder / "jupyter-config"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HOME=str(tmp_path / "home"))
    with jupyter_server("server", folder, env, tmp_path / "server.log") as (base, token):
        yield base, token, folder


def ask(base, token, path, body=None):
    """(status, JSON answer) of the button's handler at ``path`` (POST with ``body``)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{base}/course-feedback/{path}", method="GET" if body is None else "POST",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else text.decode()


def test_the_buttons_server_says_every_answer_of_the_service_plainly(bundle_server, canned):  # noqa: F811
    base, token, folder = bundle_server
    url, answers = canned
    where = {"path": NOTEBOOK}
    status, config = ask(base, token, f"config?path={NOTEBOOK}")
    assert status == 200 and config["configured"] is False, config
    assert config["problem"] == "No grading service is set up for this notebook yet."
    assert any("course-service.toml" in line for line in config["help"]), config["help"]
    assert ask(base, None, f"config?path={NOTEBOOK}")[0] in (401, 403), "the handlers answer without Jupyter's token"
    status, outside = ask(base, token, "config?path=../../etc/passwd.ipynb")
    assert status == 400 and "not in the folder JupyterLab serves" in outside["error"], outside

    student_token = "t0ken-of-erin"
    (folder / "course-service.toml").write_text(f'url = "{url}"\ntoken = "{student_token}"\n')
    status, config = ask(base, token, f"config?path={NOTEBOOK}")
    assert status == 200 and config["configured"] is True and config["url"] == url, config
    said = [config]

    answers["/api/v1/submissions"] = (429, {"error": f"10 submissions of {A} per hour: the next is possible at "
                                                     "20:15"}, {"Retry-After": "600"})
    status, limited = ask(base, token, "submissions", where)
    assert status == 400 and limited["error"].startswith(f"Limit reached: 10 submissions of {A} per hour"), limited
    assert "possible at 20:15" in limited["error"]
    answers["/api/v1/submissions"] = (413, {"error": "the notebook is 30.0 MiB, more than the 20 MiB a submission "
                                                     "may be"}, {})
    status, large = ask(base, token, "submissions", where)
    assert status == 400 and large["error"].startswith(f"{NOTEBOOK} is too large to submit"), large

    answers["/api/v1/submissions"] = (202, {"id": "abc", "status": "queued", "position": 2}, {})
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "queued", "position": 2, "assignment": A}, {})
    status, accepted = ask(base, token, "submissions", where)
    assert status == 200 and accepted["id"] == "abc" and accepted["assignment"] == A, accepted
    assert accepted["text"] == "queued (position 2)", accepted
    status, queued = ask(base, token, f"submissions/abc?path={NOTEBOOK}")
    assert (status, queued) == (200, {"status": "queued", "text": "queued (position 2)"}), queued
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "failed", "assignment": A,
                                                "reason": "the grading machine failed: MemoryError"}, {})
    status, failed = ask(base, token, f"submissions/abc?path={NOTEBOOK}")
    assert failed == {"status": "failed", "error": "Your submission could not be graded, through no fault of your "
                      "notebook: the grading machine failed: MemoryError (submit it again later)"}, failed

    results = {"score": 2.0, "output": "Note: cell 23 raised NotImplementedError", "tests": [
        {"name": "regression_data: make_regression", "score": 2.0, "max_score": 2.0, "output": "All checks passed."},
        {"name": "blobs_data: make_blobs", "score": 0.0, "max_score": 2.0, "output": "with spread=0.5 the points "
         "of class 0 should have standard deviation 0.5\nsecond line"}]}
    answers["/api/v1/submissions/abc"] = (200, {"id": "abc", "status": "done", "assignment": A, "late": True,
                                                "results": results}, {})
    answers["/api/v1/assignments"] = (200, {"per_hour": 10, "assignments": [
        {"assignment": A, "due": None, "used_this_hour": 3, "left_this_hour": 7}]}, {})
    status, done = ask(base, token, f"submissions/abc?path={NOTEBOOK}")
    assert status == 200 and done["status"] == "done" and done["late"] is True, done
    assert done["tasks"] == [
        {"task": "regression_data", "score": 2.0, "max": 2.0, "feedback": "All checks passed."},
        {"task": "blobs_data", "score": 0.0, "max": 2.0, "feedback": results["tests"][1]["output"]}], done["tasks"]
    assert (done["total"], done["max"], done["error"]) == (2.0, 4.0, None), done
    assert done["notes"] == ["Note: cell 23 raised NotImplementedError"], done["notes"]
    assert done["left"] == f"7 of 10 submissions of {A} left this hour.", done["left"]
    said += [limited, large, accepted, queued, failed, done]

    del answers["/api/v1/submissions/abc"]
    status, missing = ask(base, token, f"submissions/abc?path={NOTEBOOK}")
    assert status == 400 and "check the submission's id" in missing["error"], missing
    for answer in said + [missing]:
        assert student_token not in json.dumps(answer), "the student's token reached the browser"
