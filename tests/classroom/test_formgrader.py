"""nbgrader's instructor views of a graded class, in a temporary course folder: formgrader's submission page,
served by a real `jupyter server` with nbgrader's formgrader extension, shows the student's notebook (the
feedback template set for `generate_feedback` must not reach formgrader); and the feedback of a submission
whose cell killed the Python process names that crash next to the tasks it cost, instead of blaming the
student for a function their notebook does define; and autograde's log holds no warning that every
submission would give."""
import html
import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.classes import A, as_submission, make_course, nbgrader, wrong
from tests.jupyter import jupyter_server
from tests.notebooks import source_notebook

# minibatches is defined, then the cell kills its own process: grading leaves that cell out.
CRASH = '''
import os, signal
os.kill(os.getpid(), signal.SIGKILL)
'''

pytestmark = pytest.mark.xdist_group("formgrader")


def crashing(reference):
    """The reference whose minibatches cell kills its process after defining ``minibatches``."""
    import copy

    nb = copy.deepcopy(reference)
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "minibatches_code":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = source.rstrip("\n") + "\n" + CRASH
            return nb
    raise AssertionError("no minibatches_code cell")


def edited_grade_cell(nb):
    """``nb`` with a line added to the locked grade cell of minibatches (nbgrader restores the cell)."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "minibatches":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = source + "\nprint('edited')"
            return nb
    raise AssertionError("no minibatches grade cell")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    reference = source_notebook(A)
    students = {
        "bob": lambda release: as_submission(wrong(reference), release),
        "dave": lambda release: as_submission(crashing(reference), release),
        "eve": lambda release: edited_grade_cell(as_submission(reference, release)),
    }
    folder, made = make_course(tmp_path_factory.mktemp("course"), students)
    # As the README has instructors run it: in the course folder, no --CourseDirectory.root.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nbgrader(folder, "generate_feedback", A, "--force")
    return folder, made, proc.stdout + proc.stderr


@pytest.fixture
def server(course, tmp_path):
    """`jupyter server` on 127.0.0.1 in the course folder with nbgrader's formgrader: yields (url, token)."""
    folder, _, _ = course
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": True}}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log = tmp_path / "jupyter-server.log"
    with jupyter_server("server", folder, env, log, f"--ServerApp.root_dir={folder}") as (base, token):
        yield base, token, log


def page_text(markup):
    """The text of an HTML page: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_formgrader_opens_a_submission(course, server):
    from nbgrader.api import Gradebook

    folder, _, _ = course
    base, token, log = server
    with Gradebook(f"sqlite:///{folder}/gradebook.db") as gradebook:
        submission = gradebook.find_submission_notebook("datasets", A, "bob").id
    request = urllib.request.Request(f"{base}/formgrader/submissions/{submission}/",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, markup = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, markup = exc.code, exc.read().decode(errors="replace")
    assert status == 200, f"{status}: {page_text(markup)[:500]}\n{log.read_text()[-3000:]}"
    text = page_text(markup)
    assert "formgrader encountered an error" not in text
    assert "def minibatches(" in text, "the student's code is shown"
    assert "range(0, n - batch_size + 1, batch_size)" in text, "bob's own (wrong) line is shown"
    assert "TemplateNotFound" not in log.read_text()


def test_feedback_names_the_crash_not_a_missing_name(course):
    folder, _, _ = course
    markup = open(os.path.join(folder, "feedback", "dave", A, "datasets.html")).read()
    text = page_text(markup)
    assert re.search(r"cell \d+ stopped or hung the Python process", text), text[-3000:]
    # The note stands in the failed task's own output, next to the failure it explains.
    failed = text.split("Task minibatches failed", 1)
    assert len(failed) == 2, "minibatches failed"
    assert re.search(r"cell \d+ stopped or hung the Python process", failed[1][:1500]), failed[1][:1500]


def test_gradebook_comment_names_the_crash_beside_the_code(course):
    """The same note reaches the gradebook: the comment of the failed task's solution cell, which formgrader
    shows beside the student's code; a submission that crashed nothing gets no such comment."""
    from nbgrader.api import Gradebook

    folder, _, _ = course
    with Gradebook(f"sqlite:///{folder}/gradebook.db") as gradebook:
        crashed = gradebook.find_comment("minibatches_code", "datasets", A, "dave").auto_comment
        wrong_only = gradebook.find_comment("minibatches_code", "datasets", A, "bob").auto_comment
    assert crashed and re.search(r"cell \d+ stopped or hung the Python process", crashed), crashed
    assert not wrong_only or "About the whole notebook" not in wrong_only, wrong_only


def test_feedback_draws_its_math_without_mathjax(course):
    """Math reads offline: MathML in the page, no MathJax script fetched from a CDN."""
    folder, _, _ = course
    markup = open(os.path.join(folder, "feedback", "bob", A, "datasets.html")).read()
    assert "<math" in markup and "\\varepsilon" not in page_text(markup)
    assert not re.search(r"<script[^>]*mathjax", markup, re.I) and "cdnjs" not in markup


def test_autograde_log_holds_no_noise_for_a_normal_submission(course):
    """No "checksum has changed" for grade cells as released (their hidden tests come from the gradebook), no
    SQLAlchemy warnings, no "root '.' is not absolute"; a locked cell the student edited is still reported."""
    _, _, log = course
    changed = re.findall(r"Attribute 'checksum' for cell (\w+) has changed", log)
    assert changed == ["minibatches"], (changed, log[-3000:])       # eve's edit only, once
    assert "SAWarning" not in log, log[-3000:]
    assert "is not absolute" not in log, log[-3000:]
