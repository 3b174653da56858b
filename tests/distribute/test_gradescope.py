"""Hosted graders: Gradescope's autograder.zip run in a folder standing in for /autograder, and the grading
step of the GitHub Classroom workflow template run here. On both routes a thief (``tests.hostile.THIEF``, which
runs any finished code it can find) gains nothing: the box shows neither the package nor the installed course."""
import base64
import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.classes import A, TASKS, cli, wrong
from tests.hostile import THIEF
from tests.notebooks import ROOT, append_cell, release_notebook, source_notebook


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "autograder.zip"
    proc = cli("package", "gradescope", A, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def run_autograder(package, root, notebook):
    """Unpack the zip as Gradescope does (root/source), submit ``notebook``, run run_autograder."""
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "source")
    (root / "submission").mkdir()
    if notebook is not None:
        (root / "submission" / "datasets.ipynb").write_text(json.dumps(notebook))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=str(root), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def check_results_format(results):
    """The fields and types Gradescope reads from results.json."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["execution_time"], (int, float))
    assert results["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    assert isinstance(results["output"], str)
    assert [t["number"] for t in results["tests"]] == TASKS
    for test in results["tests"]:
        assert test["name"].startswith(test["number"])
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"
        assert isinstance(test["output"], str)
    assert results["score"] == sum(t["score"] for t in results["tests"])


def test_package_contents(package):
    names = zipfile.ZipFile(package).namelist()
    for required in ("setup.sh", "run_autograder", "requirements.txt", "autograder/judge/engine.py",
                     "autograder/graders/datasets/reference.py", "autograder/graders/datasets/tasks.toml",
                     "autograder/graders/grading.ini", "course/data.py"):
        assert required in names, required
    assert not any("__pycache__" in n or n.startswith("source/") for n in names)
    mode = zipfile.ZipFile(package).getinfo("run_autograder").external_attr >> 16
    assert mode & 0o111, "run_autograder must be executable"


def test_reference_and_wrong_submission(package, tmp_path):
    reference = run_autograder(package, tmp_path / "ref", source_notebook(A))
    check_results_format(reference)
    assert reference["score"] == 13
    mistaken = run_autograder(package, tmp_path / "wrong", wrong(source_notebook(A)))
    check_results_format(mistaken)
    assert {t["number"] for t in mistaken["tests"] if t["status"] == "failed"} == {"regression_data", "minibatches"}
    assert mistaken["score"] == 9
    stolen = run_autograder(package, tmp_path / "thief", append_cell(release_notebook(A), THIEF))
    assert stolen["score"] == 0, [t["number"] for t in stolen["tests"] if t["status"] == "passed"]


def test_nothing_submitted(package, tmp_path):
    results = run_autograder(package, tmp_path / "none", None)
    check_results_format(results)
    assert results["score"] == 0 and "No notebook was submitted" in results["output"]


def classroom_grade(folder, notebook):
    """Run the Classroom workflow's grading step on a repository holding ``notebook``: the reporter's payload."""
    with open(os.path.join(ROOT, ".github", "classroom", "autograding.yml")) as handle:
        workflow = yaml.safe_load(handle)
    steps = workflow["jobs"]["autograding"]["steps"]
    step = next(s for s in steps if s.get("id") == "grade")
    reporter = next(s for s in steps if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == "grade" and "steps.grade.outputs.result" in reporter["env"]["GRADE_RESULTS"]
    # The student's repository as the workflow checks it out: their notebook and nothing of the graders.
    (folder / "submission").mkdir(parents=True)
    (folder / "submission" / "datasets.ipynb").write_text(json.dumps(notebook))
    output = folder / "github_output"
    env = dict(os.environ, ASSIGNMENT=A, GITHUB_OUTPUT=str(output),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run(["bash", "-e", "-c", step["run"].replace("python ", f"{sys.executable} ", 1)],
                          cwd=str(folder), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = output.read_text().strip()
    assert line.startswith("result=")
    return json.loads(base64.b64decode(line[len("result="):]))


def test_github_classroom_grading_step(tmp_path):
    payload = classroom_grade(tmp_path / "wrong", wrong(source_notebook(A)))
    assert payload["version"] == 1 and payload["status"] == "fail" and payload["max_score"] == 13
    assert sum(t["score"] for t in payload["tests"]) == 9
    assert {t["name"].split(":")[0] for t in payload["tests"] if t["status"] == "fail"} == {
        "Task regression_data", "Task minibatches"}
    stolen = classroom_grade(tmp_path / "thief", append_cell(release_notebook(A), THIEF))
    assert sum(t["score"] for t in stolen["tests"]) == 0, [t["name"] for t in stolen["tests"] if t["status"] != "fail"]
