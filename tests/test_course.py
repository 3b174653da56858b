"""Course-wide promises: task ids thread through notebook and graders; release/ is nbgrader's output of
source/ with no solution text and no grader code; source notebooks run top to bottom."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from autograder.notebook import nbgrader_meta, read_notebook, source_of, tags_of
from autograder.release import generate_into, source_assignments
from autograder.tasks import GRADER_MODULES, lesson_name, load_assignment
from tests.notebooks import ROOT, notebook_path

ASSIGNMENTS = source_assignments()
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)


def test_every_lesson_is_known():
    assert set(ASSIGNMENTS) <= set(GRADER_MODULES), "a source/ folder without a grader module"


def test_task_ids_are_unique_across_the_course():
    seen = {}
    for assignment in ASSIGNMENTS:
        for task in load_assignment(assignment).tasks:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", task.id), task.id
            assert task.id not in seen, f"{task.id} in {assignment} and {seen.get(task.id)}"
            seen[task.id] = assignment


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_task_id_threads_through_notebook_and_graders(assignment):
    nb = read_notebook(notebook_path(assignment))
    tasks = {t.id: t for t in load_assignment(assignment).tasks}
    assert nb["metadata"]["course"]["assignment"] == assignment
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    grade_cells = {nbgrader_meta(c)["grade_id"]: c for c in nb["cells"]
                   if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}
    solution_ids = {nbgrader_meta(c)["grade_id"] for c in nb["cells"] if nbgrader_meta(c).get("solution")}
    markdown = "\n".join(source_of(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert set(grade_cells) == set(tasks), "grade cells and graded tasks differ"
    for task_id, task in tasks.items():
        cell = grade_cells[task_id]
        assert nbgrader_meta(cell)["points"] == task.points, task_id
        # A task may grade part of another task's code (CODE_WRITTEN_IN: task -> task whose cell holds it).
        owner = getattr(load_assignment(assignment).module, "CODE_WRITTEN_IN", {}).get(task_id, task_id)
        assert f"{owner}_code" in solution_ids, f"no solution cell {owner}_code"
        assert f"Task `{task_id}`" in markdown, f"no instructions headed Task `{task_id}`"
        hidden = HIDDEN.findall(source_of(cell))
        assert hidden and f'check_task("{task_id}", globals())' in hidden[0], task_id
        visible = [line for line in HIDDEN.sub("", source_of(cell)).splitlines() if line.strip()]
        # Visible code in a grade cell would show the hidden lines in tracebacks of nbgrader feedback.
        assert all(line.lstrip().startswith("#") for line in visible), f"code outside hidden tests in {task_id}"
    module_text = open(load_assignment(assignment).path).read()
    for task_id in tasks:
        assert f"@pytest.mark.{task_id}" in module_text, f"no grader marked {task_id}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_is_committed_clean(assignment):
    nb = read_notebook(notebook_path(assignment))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "outputs committed"
        if "skip-when-grading" in tags_of(cell):
            assert nbgrader_meta(cell).get("locked"), "demo cells must be read-only"
            assert not nbgrader_meta(cell).get("solution"), "a demo cell cannot hold a solution"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    course_dir = str(tmp_path_factory.mktemp("course"))
    return generate_into(course_dir, ASSIGNMENTS)


def _normalised(nb):
    cells = []
    for cell in nb["cells"]:
        meta = dict(nbgrader_meta(cell))
        meta.pop("checksum", None)
        cells.append((cell["cell_type"], source_of(cell), json.dumps(meta, sort_keys=True),
                      sorted(tags_of(cell))))
    return cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_exactly_what_nbgrader_makes(assignment, regenerated):
    fresh_dir = os.path.join(regenerated, assignment)
    committed_dir = os.path.join(ROOT, "release", assignment)
    assert os.path.isdir(committed_dir), f"release/{assignment} is missing: run python -m autograder release"
    fresh_files = sorted(os.listdir(fresh_dir))
    assert sorted(os.listdir(committed_dir)) == fresh_files
    for name in fresh_files:
        if name.endswith(".ipynb"):
            fresh = read_notebook(os.path.join(fresh_dir, name))
            committed = read_notebook(os.path.join(committed_dir, name))
            assert _normalised(committed) == _normalised(fresh), (
                f"release/{assignment}/{name} is out of date: run python -m autograder release {assignment}")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_and_no_grader_code(assignment):
    release_dir = os.path.join(ROOT, "release", assignment)
    names = os.listdir(release_dir)
    assert all(n.endswith(".ipynb") for n in names), f"non-notebook files leaked into the release: {names}"
    release_text = "\n".join(source_of(c) for n in names for c in read_notebook(os.path.join(release_dir, n))["cells"])
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "autograder", "check_task"):
        assert marker not in release_text, marker
    source = read_notebook(notebook_path(assignment))
    texts = [source_of(c) for c in source["cells"]]
    public = "\n".join(SOLUTION.sub("", t) for t in texts)   # what students may see anyway
    for text in texts:
        for region in SOLUTION.findall(text):
            for line in region.splitlines():
                line = line.strip()
                if len(line) >= 30 and not line.startswith("#") and line not in public:
                    assert line not in release_text, f"solution line leaked: {line}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_runs_top_to_bottom(assignment, tmp_path):
    """nbval executes every cell (hidden tests included, so the graders pass in-kernel) in quick mode."""
    folder = tmp_path / assignment
    shutil.copytree(os.path.join(ROOT, "source", assignment), folder)
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg", TQDM_DISABLE="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--nbval-cell-timeout=600", str(folder / (lesson_name(assignment) + ".ipynb"))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
