"""The student's JupyterLab, in a real browser (Debian's Chromium, through Playwright): started in a bundle as
its README says (JUPYTER_CONFIG_PATH=jupyter-config), the Nbgrader menu offers the Assignment List and no
instructor tool (Formgrader, Course List, Create Assignment), the notebook keeps its Validate button, and
the Validate dialog's success text says that the quick checks passed and the hidden graders check more
instead of nbgrader's "Success! Your notebook passes all the tests."."""
import os
import re

import pytest

from tests.browser import BROWSER_TEST, browser_page
from tests.jupyter import STARTUP_S, jupyter_server

pytestmark = BROWSER_TEST

# The dialog nbgrader's labextension shows when no check cell fails (its DOM, text as nbgrader writes it).
SUCCESS_DIALOG_JS = """() => {
    const message = document.createElement('div');
    message.id = 'validation-message';
    message.className = 'validation-success';
    const box = document.createElement('div'), line = document.createElement('p');
    line.innerText = 'Success! Your notebook passes all the tests.';
    box.append(line); message.append(box); document.body.append(message);
    const after = getComputedStyle(line, '::after');
    return {fontSize: getComputedStyle(line).fontSize, after: after.content, afterSize: after.fontSize};
}"""
MENU_JS = """() => Array.from(document.querySelectorAll('.lm-Menu-item'))
    .filter(item => getComputedStyle(item).display !== 'none').map(item => item.innerText.trim())"""


@pytest.fixture
def student_lab(tmp_path):
    from autograder.distribute.bundle import write_bundle

    folder = write_bundle("01-datasets", str(tmp_path / "bundle"))
    readme = open(os.path.join(folder, "README.md")).read()
    setting = re.search(r"^JUPYTER_CONFIG_PATH=(\S+) \.venv/bin/python -m jupyter lab ", readme, re.M)
    assert setting, "the README starts JupyterLab with the bundle's Jupyter settings"
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_GRADING", "COURSE_QUICK")}
    env.update(JUPYTER_CONFIG_PATH=setting.group(1), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = tmp_path / "lab.log"
    with jupyter_server("lab", folder, env, log, f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}") as (base, token):
        yield base, token, log


def test_student_lab_shows_no_instructor_tool_and_an_honest_validate(student_lab):
    base, token, log = student_lab
    with browser_page() as page:
        page.goto(f"{base}/lab/tree/datasets.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=STARTUP_S * 1000)
        # the kernel up and idle first: a page closed while its kernel starts leaves the server's log a
        # traceback of its own (jupyter_server's early-close race), which is not what this test looks for
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=STARTUP_S * 1000)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).click()
        page.wait_for_selector(".lm-Menu-item", timeout=30000)
        items = page.evaluate(MENU_JS)
        page.keyboard.press("Escape")
        assert "Assignment List" in items, items
        for tool in ("Formgrader", "Course List", "Create Assignment"):
            assert not [item for item in items if tool in item], (tool, items)
        assert page.locator(".jp-Toolbar button, .jp-Toolbar .jp-ToolbarButtonComponent",
                            has_text="Validate").count() >= 1, "the Validate button stays"
        dialog = page.evaluate(SUCCESS_DIALOG_JS)
    assert dialog["fontSize"] == "0px", dialog
    assert "quick checks of every task passed" in dialog["after"], dialog
    assert "hidden graders check more" in dialog["after"], dialog
    assert dialog["afterSize"] != "0px", dialog
    assert "Traceback" not in log.read_text()
