"""A student's first session in JupyterLab, driven in a real browser (Debian's Chromium, through Playwright).

``jupyter lab`` serves a student bundle of 01-datasets from a temporary folder; the browser opens the
notebook, runs all cells (Run All must stop at the first task's stub, with nothing earlier failing),
pastes the reference solution of the first task, runs again (its quick checks pass and Run All stops at
a later task), and presses nbgrader's Validate button, whose verdict must not be "Success" while tasks
are unfinished. Screenshots of each step go to ``$COURSE_ARTIFACTS`` (else the test's temporary folder).
"""
import ast
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from tests.browser import BROWSER_TEST, browser_page
from tests.jupyter import STARTUP_S, jupyter_server

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT, LESSON = "01-datasets", "datasets"
NOTEBOOK = f"{LESSON}.ipynb"
RUN_S, VALIDATE_S = 180, 300   # generous: the machine may be busy with other tests
# A student's JupyterLab: inline figures (the tests' MPLBACKEND=Agg would hide them), no grading settings.
STUDENT_ENV_DROPS = {"MPLBACKEND", "COURSE_QUICK", "COURSE_GRADING", "COURSE_GRADING_SEED", "TQDM_DISABLE"}

pytestmark = BROWSER_TEST


# ----------------------------------------------------------------------------------------- helpers
def student_folder(dest):
    """The student bundle of ASSIGNMENT in ``dest`` (release notebook + library if bundles are not built)."""
    try:
        from autograder.distribute.bundle import write_bundle
    except ImportError:
        from autograder.sandbox.library import stage_library

        dest.mkdir(parents=True)
        shutil.copy(ROOT / "release" / ASSIGNMENT / NOTEBOOK, dest / NOTEBOOK)
        stage_library(ASSIGNMENT, str(dest))
        return dest
    write_bundle(ASSIGNMENT, str(dest), root=str(ROOT))
    return dest


def first_task(release_nb):
    """(task id, index of its solution cell, index of its grade cell) of the notebook's first task."""
    meta = [cell.metadata.get("nbgrader", {}) for cell in release_nb.cells]
    code = next(i for i, m in enumerate(meta) if m.get("solution") and m.get("grade_id", "").endswith("_code"))
    task = meta[code]["grade_id"].removesuffix("_code")
    grade = next(i for i, m in enumerate(meta) if m.get("grade") and m.get("grade_id") == task)
    return task, code, grade


def reference_solution(task):
    """The source notebook's solution of ``task``, without nbgrader's solution markers."""
    nb = nbformat.read(ROOT / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{task}_code")
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return "\n".join(line for line in cell.source.splitlines() if line.strip() not in markers)


def stub_message(source):
    """The message of the stub's ``raise NotImplementedError(...)`` in a release cell ('' if none)."""
    match = re.search(r"raise NotImplementedError\((.*)\)\s*$", source, re.M | re.S)
    if not match or not match.group(1).strip():
        return ""
    try:
        return str(ast.literal_eval(match.group(1).strip()))
    except (ValueError, SyntaxError):
        return ""


def write_lab_settings(folder):
    """JupyterLab user settings: no news pop-up, every cell rendered (so all outputs can be read)."""
    for plugin, values in {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
                           "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture
def lab(tmp_path):
    """A running ``jupyter lab`` serving a student folder: yields (base url, token, folder, log path)."""
    folder = student_folder(tmp_path / "student")
    settings = tmp_path / "lab-settings"
    write_lab_settings(settings)
    log = tmp_path / "jupyter-lab.log"
    env = {name: value for name, value in os.environ.items() if name not in STUDENT_ENV_DROPS}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    with jupyter_server("lab", folder, env, log, f"--ServerApp.root_dir={folder}",
                        f"--LabApp.user_settings_dir={settings}",
                        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}") as (base, token):
        yield base, token, folder, log


CELLS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')).map(c => ({
    prompt: ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim(),
    error: Array.from(c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
                .map(e => e.innerText).join('\\n'),
    output: (c.querySelector('.jp-OutputArea') || {}).innerText || ''}))"""


def cells(page):
    """[{prompt, error, output}] of the notebook's cells, in order, as the page shows them."""
    return page.evaluate(CELLS_JS)


def execution_counts(state):
    """The execution counts shown in the prompts (None where a cell has not run)."""
    counts = []
    for cell in state:
        match = re.fullmatch(r"\[(\d+)\]:", cell["prompt"])
        counts.append(int(match.group(1)) if match else None)
    return counts


def run_all(page):
    """Run > Run All Cells, then wait until the kernel is idle and no cell is pending; returns cells()."""
    before = max([c for c in execution_counts(cells(page)) if c] or [0])
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + RUN_S
    while True:
        state = cells(page)
        counts = [c for c in execution_counts(state) if c]
        pending = any(cell["prompt"] == "[*]:" for cell in state)
        idle = page.locator(".jp-StatusBar-TextItem", has_text="| Idle").count() > 0
        if idle and not pending and max(counts or [0]) > before:
            return state
        assert time.monotonic() < deadline, f"Run All Cells did not finish in {RUN_S} s"
        time.sleep(0.5)


def first_error(state):
    """Index of the first cell showing an error, or None."""
    return next((i for i, cell in enumerate(state) if cell["error"]), None)


# -------------------------------------------------------------------------------------------- test
def test_student_runs_fills_and_validates_in_jupyterlab(lab, tmp_path):
    base, token, folder, log = lab
    artifacts = Path(os.environ.get("COURSE_ARTIFACTS") or tmp_path / "screenshots")
    artifacts.mkdir(parents=True, exist_ok=True)
    release = nbformat.read(folder / NOTEBOOK, as_version=4)
    task, code, grade = first_task(release)
    solution = reference_solution(task)
    message = stub_message(release.cells[code].source)

    def shot(page, name):
        path = artifacts / f"jupyterlab-{name}.png"
        page.screenshot(path=str(path))
        print(f"{time.monotonic() - started:6.1f} s  screenshot: {path}")

    started = time.monotonic()
    print(f"JupyterLab serves {folder} at {base}")
    with browser_page(base, (1400, 900), on_failure=lambda page: shot(page, "failure")) as page:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", timeout=STARTUP_S * 1000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=STARTUP_S * 1000)
        print(f"{time.monotonic() - started:6.1f} s  notebook shown")
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=STARTUP_S * 1000)
        print(f"{time.monotonic() - started:6.1f} s  kernel idle")
        validate = page.locator(".jp-NotebookPanel .jp-Toolbar-item", has_text="Validate")
        assert validate.count() == 1, "nbgrader's Validate button is missing: is its JupyterLab " \
                                      "extension (@jupyter/nbgrader) installed and enabled?"
        assert "validate_assignment | extension was successfully loaded" in log.read_text(), \
            "nbgrader's validate_assignment server extension is not enabled"

        # 1. Run All stops at the first task's stub; nothing earlier fails.
        state = run_all(page)
        assert len(state) == len(release.cells), "the page does not show every cell of the notebook"
        stop = first_error(state)
        assert stop is not None, "Run All on the untouched release ran without any error"
        assert code <= stop <= grade, (
            f"Run All stopped at cell {stop}, outside task `{task}` (cells {code}-{grade}):\n"
            f"{state[stop]['error'][-1500:]}")
        raised = re.findall(r"^NotImplementedError:.*$", state[stop]["error"], re.M)
        assert raised and f"`{task}`" in raised[-1], (
            f"Run All should stop with a NotImplementedError naming task `{task}`:\n"
            f"{state[stop]['error'][-1500:]}")
        assert message and message in raised[-1], f"the stub's message {message!r} is not shown: {raised}"
        counts = execution_counts(state)
        for i, cell in enumerate(release.cells):
            if cell.cell_type == "code" and i <= stop:
                assert counts[i] is not None, f"cell {i} before the stub did not run"
            if cell.cell_type == "code" and i > stop:
                assert counts[i] is None, f"cell {i} ran although Run All should stop at cell {stop}"
        page.locator(".jp-NotebookPanel .jp-Cell").nth(stop).scroll_into_view_if_needed()
        shot(page, "1-run-all-stops-at-the-first-stub")

        # 2. Paste the reference solution of the first task into its cell.
        editor = page.locator(".jp-NotebookPanel .jp-Cell").nth(code).locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.evaluate("text => navigator.clipboard.writeText(text)", solution)
        page.keyboard.press("Control+v")
        assert editor.inner_text().strip() == solution.strip(), "the pasted solution differs in the editor"
        shot(page, "2-first-task-filled")

        # 3. Run All again: the task's cells pass, its quick checks say so, a later stub stops the run.
        state = run_all(page)
        stop = first_error(state)
        assert stop is None or stop > grade, (
            f"with the reference solution of `{task}`, cell {stop} failed:\n{state[stop]['error'][-1500:]}")
        assert re.search(rf"`{task}`.*quick checks passed", state[grade]["output"], re.I), (
            f"the grade cell of `{task}` printed no pass line: {state[grade]['output']!r}")
        page.locator(".jp-NotebookPanel .jp-Cell").nth(grade).scroll_into_view_if_needed()
        shot(page, "3-first-task-quick-checks-pass")

        # 4. Validate (it saves first): unfinished tasks must not be reported as a success.
        validate.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=VALIDATE_S * 1000)
        page.locator(".jp-Dialog-header", has_text=re.compile("Validat")).wait_for(timeout=10_000)
        verdict = dialog.inner_text()
        shot(page, "4-validate-verdict")
        assert "Validation Results" in verdict, f"Validate did not run: {verdict[:1500]}"
        assert "error running the validate command" not in verdict, verdict[:3000]
        assert "Success" not in verdict, (
            f"Validate reports success for a notebook with unfinished tasks:\n{verdict[:1500]}")
        assert "fail" in verdict.lower(), f"Validate's verdict names no failure:\n{verdict[:1500]}"
        for hidden in ("BEGIN HIDDEN TESTS", "check_task", "autograder"):
            assert hidden not in verdict, f"Validate's verdict shows grader code ({hidden!r}):\n{verdict[:1500]}"
        unfinished = [c.metadata["nbgrader"]["grade_id"] for c in release.cells[grade + 1:]
                      if c.metadata.get("nbgrader", {}).get("grade")]
        assert any(f"`{name}`" in verdict for name in unfinished), (
            f"Validate's verdict names none of the unfinished tasks {unfinished}:\n{verdict[:1500]}")
    print(f"browser session took {time.monotonic() - started:.1f} s; screenshots in {artifacts}")
