"""Course-wide promises: task ids thread through notebook and graders; grade cells hold visible quick checks
above their hidden tests; release/ is nbgrader's output of source/ with no solution text and no grader code;
source notebooks run top to bottom."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from autograder.judge.notebook import nbgrader_meta, read_notebook, source_of, tags_of
from autograder.distribute.release import generate_into, source_assignments
from autograder.judge.tasks import GRADER_MODULES, lesson_name, load_assignment
from tests.notebooks import ROOT, notebook_path

ASSIGNMENTS = source_assignments()
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)


def test_every_lesson_is_known():
    assert set(ASSIGNMENTS) <= set(GRADER_MODULES), "a source/ folder without a grader package"


def test_task_ids_are_unique_across_the_course():
    seen = {}
    for assignment in ASSIGNMENTS:
        for task in load_assignment(assignment).tasks:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", task.id), task.id
            assert task.id not in seen, f"{task.id} in {assignment} and {seen.get(task.id)}"
            seen[task.id] = assignment


def check_grade_cell(task_id, source):
    """A grade cell: a comment line naming the task, visible quick checks (each assert with a message naming
    the task), one print on success, then the hidden region holding only the check_task call."""
    hidden = HIDDEN.findall(source)
    assert len(hidden) == 1, f"{task_id}: one hidden region"
    assert [line.strip() for line in hidden[0].splitlines() if line.strip()] == [
        "from autograder.bridge import check_task", f'check_task("{task_id}", globals())'], (
        f"{task_id}: the hidden region holds only the check_task call")
    assert source.rstrip().endswith("### END HIDDEN TESTS"), f"{task_id}: nothing after the hidden region"
    visible = HIDDEN.sub("", source)
    lines = [line for line in visible.splitlines() if line.strip()]
    assert lines[0].startswith(f"# Task `{task_id}`"), f"{task_id}: the cell starts with a comment naming the task"
    assert lines[-1] == f'print("Task `{task_id}`: quick checks passed.")', f"{task_id}: one print on success, last"
    assert sum("print(" in line for line in lines) == 1, f"{task_id}: exactly one line printed on success"
    tree = ast.parse(visible)
    asserts = [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert asserts, f"{task_id}: no visible quick check"
    for node in asserts:
        message = ast.get_source_segment(visible, node.msg) if node.msg is not None else ""
        assert f"Task `{task_id}`" in message, (
            f"{task_id}: assert without a message naming the task, line {node.lineno}")


def test_grade_cell_rule_rejects_what_it_should():
    good = ('# Task `t`: quick checks (the hidden tests check more).\nassert f(1) == 2, "Task `t`: f(1) should be 2"\n'
            'print("Task `t`: quick checks passed.")\n### BEGIN HIDDEN TESTS\n'
            'from autograder.bridge import check_task\n'
            'check_task("t", globals())\n### END HIDDEN TESTS')
    check_grade_cell("t", good)
    bad = [good.replace(', "Task `t`: f(1) should be 2"', ""),                       # assert without a message
           good.replace('print("Task `t`: quick checks passed.")\n', ""),          # silent on success
           good.replace("check_task(\"t\", globals())", "check_task(\"t\", globals())\nassert f(2) == 3"),
           good.replace("assert f(1) == 2", "x = f(1)").replace(', "Task `t`: f(1) should be 2"', "")]
    for source in bad:
        with pytest.raises(AssertionError):
            check_grade_cell("t", source)


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
        check_grade_cell(task_id, source_of(cell))
    assert not [c for c in nb["cells"] if nbgrader_meta(c).get("grade_id", "").endswith("_check")], (
        "quick checks belong in the grade cell, above its hidden tests")
    checks = {m.__name__.rsplit(".", 1)[1]: open(m.__file__).read()
              for m in load_assignment(assignment).grader_modules()}
    for task_id in tasks:
        assert f"@pytest.mark.{task_id}" in checks.get(f"test_{task_id}", ""), (
            f"no test_{task_id}.py with a grader marked {task_id}")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_is_committed_clean(assignment):
    nb = read_notebook(notebook_path(assignment))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "outputs committed"
        if "skip-when-grading" in tags_of(cell):
            assert nbgrader_meta(cell).get("locked"), "demo cells must be read-only"
            assert not nbgrader_meta(cell).get("solution"), "a demo cell cannot hold a solution"
            assert re.match(DEMO_TIME, source_of(cell)), f"a demo states what it costs: {source_of(cell)[:80]!r}"


# The first line of every demo: its time measured by benchmarks/run_all_time.py.
DEMO_TIME = (r"# Demo \(not graded, left out by Validate\): (under a second|about \d+ s) on an idle 2-core "
             r"machine\.\n")


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


@pytest.mark.xdist_group("regenerated")          # one worker regenerates every release once
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
def test_release_stubs_name_their_task(assignment):
    """Each answer cell of the release keeps `# YOUR CODE HERE` and raises NotImplementedError naming its task."""
    release = read_notebook(notebook_path(assignment, "release"))
    cells = [c for c in release["cells"] if nbgrader_meta(c).get("solution") and c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        task_id = nbgrader_meta(cell)["grade_id"].removesuffix("_code")
        text = source_of(cell)
        stubs = re.findall(r'raise NotImplementedError\("(.*)"\)', text)
        assert "# YOUR CODE HERE" in text and stubs, f"{task_id}: no stub"
        assert "raise NotImplementedError()" not in text, f"{task_id}: a bare stub"
        for message in stubs:
            assert message.startswith(f"Task `{task_id}`: ") and message.endswith(" here."), message


def test_stub_messages_say_what_to_write():
    from autograder.distribute.release import stub_message

    method = ["class Net(nn.Module):", "    def forward(self, X):", '        """X: (N, 784)."""']
    assert stub_message("mnist_cnn", method, [], 8) == "Task `mnist_cnn`: write the body of `Net.forward` here."
    assert stub_message("pair_dataset", ["class PairDataset(Dataset):", ""], [], 4) == (
        "Task `pair_dataset`: write the methods of class `PairDataset` here.")
    region = ["def make_regression(w, b):", "    pass", "_helper = 1", "loss_fn = F.cross_entropy"]
    assert stub_message("reusable_module", ["%%writefile my_datasets.py"], region, 0,
                        "write make_regression and loss_fn") == (
        "Task `reusable_module`: define `make_regression` and `loss_fn` here.")
    assert stub_message("t", [], ["secret_name = 1"], 0, "instructions") == "Task `t`: write your code here."


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
