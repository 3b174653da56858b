"""Student bundles (dist/student/<assignment>/): the notebook, the course library of earlier lessons, an
installable pyproject.toml and a README, and nothing that gives away this or a later assignment."""
import ast
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from autograder.distribute.bundle import DEPENDENCIES, write_bundle
from autograder.sandbox.library import ASSIGNMENTS, LESSON_MODULES, STUB, TOOLS, hidden_modules
from autograder.judge.notebook import nbgrader_meta, read_notebook, source_of
from autograder.judge.tasks import lesson_name
from tests.jupyter import jupyter_server
from tests.notebooks import ROOT, find_cell, judge_in_process, notebook_path, replace_solution, source_notebook

SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
GRADER_TEXT = re.compile(r"BEGIN SOLUTION|END SOLUTION|HIDDEN TESTS|check_task|\b(from|import)\s+autograder\b")
EXPECTED_FILES = {"course", "pyproject.toml", "README.md", "nbgrader_config.py", "jupyter-config"}


def _code_without_magics(text):
    """Python source of a cell: IPython magics and shell lines dropped (a %%writefile body is kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())


def top_level_names(text):
    """Names of the top-level def and class statements of ``text``."""
    try:
        tree = ast.parse(_code_without_magics(text))
    except SyntaxError:
        return set(re.findall(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", text, re.M))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def graded_names(assignment):
    """Functions and classes students write in ``assignment``: top-level defs of its solution cells."""
    names = set()
    for cell in read_notebook(notebook_path(assignment))["cells"]:
        if cell["cell_type"] == "code" and nbgrader_meta(cell).get("solution"):
            names |= top_level_names(source_of(cell))
    return names


def solution_lines(assignment):
    """Lines of the reference solutions that students never see (30+ characters, not comments)."""
    texts = [source_of(c) for c in read_notebook(notebook_path(assignment))["cells"]]
    public = "\n".join(SOLUTION.sub("", t) for t in texts)
    lines = set()
    for text in texts:
        for region in SOLUTION.findall(text):
            for line in region.splitlines():
                line = line.strip()
                if len(line) >= 30 and not line.startswith("#") and line not in public:
                    lines.add(line)
    return lines


def bundle_texts(folder):
    """{relative path: text} of every file of a bundle (notebooks as their cells' sources)."""
    texts = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, folder)
            if name.endswith(".ipynb"):
                texts[rel] = "\n".join(source_of(c) for c in read_notebook(path)["cells"])
            else:
                with open(path, encoding="utf-8") as handle:
                    texts[rel] = handle.read()
    return texts


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    return {a: write_bundle(a, dest=str(root / a)) for a in ASSIGNMENTS}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_bundle_holds_the_notebook_library_project_and_readme(bundles, assignment):
    folder = bundles[assignment]
    notebook = lesson_name(assignment) + ".ipynb"
    assert set(os.listdir(folder)) == EXPECTED_FILES | {notebook}, "nothing else (no source/, no autograder/)"
    with open(os.path.join(folder, notebook)) as copied, open(notebook_path(assignment, "release")) as released:
        assert json.load(copied) == json.load(released), "the bundle's notebook is the release notebook"
    with open(os.path.join(folder, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    assert project["project"]["dependencies"] == DEPENDENCIES
    assert project["tool"]["setuptools"]["packages"] == ["course"]
    with open(os.path.join(ROOT, "nbgrader_config.py")) as handle:
        course_id = re.search(r'c.CourseDirectory.course_id = "(.+)"', handle.read())
    settings = open(os.path.join(folder, "nbgrader_config.py")).read()
    assert f'c.CourseDirectory.course_id = "{course_id.group(1)}"' in settings, "the course's id, for the exchange"
    readme = open(os.path.join(folder, "README.md")).read()
    for step in (f"jupyter lab {notebook}", f"nbgrader validate {notebook}", "pip install -e .", "Submit",
                 f"python -m course.submit {notebook}", "course-service.toml", "COURSE_SERVICE_TOKEN"):
        assert step in readme, step
    assert os.path.isfile(os.path.join(folder, "course", "submit.py")), "the grading service's client"
    pins = " ".join(d for d in DEPENDENCIES if d.startswith(("torch==", "torchvision==")))
    assert f"pip install {pins} --index-url https://download.pytorch.org/whl/cpu" in readme, "the CPU-only build"
    assert "Use that environment" in readme, "how to reuse one environment for every lesson"


# Lines of later answers that a library tool shares, each with why it gives no answer away.
SHARED_WITH_TOOLS = {
    'for root, _, files in os.walk(log_dir):':
        "course.events walks run directories for its TensorBoard readers; read_scalars' keys and types are not there",
    'for tag in accumulator.Tags()["scalars"]:':
        "course.events lists scalar tags for its readers; read_scalars' keys and types are not there",
}
LESSON_MODULE_FILES = {f"course/{m}.py" for modules in LESSON_MODULES.values() for m in modules}
TOOL_FILES = {f"course/{m}.py" for m in TOOLS}      # judged by behaviour: test_tools_answer_no_task_of_any_lesson


def text_leaks(folder, assignment):
    """Grader text anywhere; a line of this lesson's answers in its notebook, README or settings; a line of
    this or a later lesson's answers in the shared library modules (data, plotting, events, ...).
    Earlier lessons' modules hold their finished code by design (their names are checked by name_leaks)."""
    texts = bundle_texts(folder)
    problems = []
    for rel, text in texts.items():
        found = GRADER_TEXT.search(text)
        if found:
            problems.append(f"{rel} holds grader text: {found.group(0)!r}")
    for line in solution_lines(assignment):
        problems += [f"{rel} holds a solution line: {line}" for rel, text in texts.items()
                     if not rel.startswith("course" + os.sep) and line in text]
    shared = {rel: text for rel, text in texts.items()
              if rel.startswith("course" + os.sep) and rel.replace(os.sep, "/") not in LESSON_MODULE_FILES | TOOL_FILES}
    for later in ASSIGNMENTS[ASSIGNMENTS.index(assignment):]:
        for line in solution_lines(later) - set(SHARED_WITH_TOOLS):
            problems += [f"{rel} holds {later}'s solution line: {line}" for rel, text in shared.items()
                         if line in text]
    return problems


def name_leaks(folder, assignment):
    """Functions and classes of the bundle's library that this or a later assignment has students write
    (tools excepted: test_tools_answer_no_task_of_any_lesson shows by their behaviour that they answer none)."""
    position = ASSIGNMENTS.index(assignment)
    graded = {name: later for later in ASSIGNMENTS[position:] for name in graded_names(later)}
    assert graded, "no graded names found: the check would be empty"
    library = os.path.join(folder, "course")
    problems = []
    for name in sorted(os.listdir(library)):
        module = name[:-3]
        if not name.endswith(".py") or module in TOOLS:
            continue
        with open(os.path.join(library, name), encoding="utf-8") as handle:
            shipped = top_level_names(handle.read()) & set(graded)
        problems += [f"course/{name} defines {n} (written in {graded[n]})" for n in sorted(shipped)]
    return problems


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_bundle_leaks_no_answer_and_no_grader(bundles, assignment):
    assert "course/data.py" in {rel.replace(os.sep, "/") for rel in bundle_texts(bundles[assignment])}
    assert text_leaks(bundles[assignment], assignment) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_bundle_library_holds_no_object_students_write_now_or_later(bundles, assignment):
    assert name_leaks(bundles[assignment], assignment) == []


def test_known_leaks_are_caught(bundles, tmp_path):
    """The checks find this lesson's finished module, a solution line in a tool, and hidden tests."""
    import shutil

    folder = tmp_path / "leaky"
    shutil.copytree(bundles["03-linear-regression"], folder)
    shutil.copy(os.path.join(ROOT, "course", "linear_regression.py"), folder / "course" / "linear_regression.py")
    assert any("defines sgd (written in 03-linear-regression)" in p for p in name_leaks(folder, "03-linear-regression"))
    line = sorted(solution_lines("05-softmax-regression"))[0]
    with open(folder / "course" / "plotting.py", "a") as handle:
        handle.write("\n# " + line + "\n")
    assert any(line in p for p in text_leaks(folder, "03-linear-regression"))
    nb = read_notebook(notebook_path("03-linear-regression"))
    with open(folder / "linear_regression.ipynb", "w") as handle:
        json.dump(nb, handle)
    problems = text_leaks(folder, "03-linear-regression")
    assert any("grader text" in p for p in problems) and any("holds a solution line" in p for p in problems)


# A tool shares names with a lesson's answers (course.trainer: accuracy, loss_batch, evaluate, fit, as 06
# asks for them) but not their behaviour. Shown by behaviour, not by names: every function and class of the
# tool, pasted into the cell of every task that writes one of the same name, fails that task's graders.
def _definitions(text):
    """{name: source} of the top-level def and class statements of ``text``, with its import lines first."""
    tree = ast.parse(text)
    imports = "\n".join(ast.get_source_segment(text, node) for node in tree.body
                        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Try)))
    return {node.name: imports + "\n\n\n" + ast.get_source_segment(text, node) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _solution_cells(assignment):
    """[(task id of the cell, the tasks whose code it holds, the names it defines)] of ``assignment``."""
    from autograder.judge.tasks import load_assignment

    module = load_assignment(assignment).module
    cells = []
    for cell in source_notebook(assignment)["cells"]:
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        if cell["cell_type"] == "code" and nbgrader_meta(cell).get("solution") and grade_id.endswith("_code"):
            task = grade_id[:-len("_code")]
            tasks = [task] + [t for t, home in module.CODE_WRITTEN_IN.items() if home == task]
            cells.append((task, tasks, top_level_names(source_of(cell))))
    return cells


def tool_answers(text):
    """[(assignment, task, names)] of the tasks whose graders a tool's source ``text`` passes, and the number of
    tasks tried: its same-named definitions are appended to the reference solution's cell (so that they replace
    its own and everything else stays correct), and each task of that cell is judged."""
    definitions = _definitions(text)
    passed, tried = [], 0
    for assignment in ASSIGNMENTS:
        reference = source_notebook(assignment)
        for task, tasks, names in _solution_cells(assignment):
            shared = sorted(names & set(definitions))
            if not shared:
                continue
            head = definitions[shared[0]].split("\n\n\n")[0]
            pasted = "\n\n\n".join(definitions[n].split("\n\n\n", 1)[1] for n in shared)
            cell = source_of(find_cell(reference, f"{task}_code"))
            nb = replace_solution(reference, task, f"{cell}\n\n\n{head}\n\n\n{pasted}\n")
            for judged in tasks:
                tried += 1
                if not judge_in_process(nb, assignment, judged):
                    passed.append((assignment, judged, shared))
    return passed, tried


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_answer_no_task_of_any_lesson(bundles, tool):
    texts = {a: open(os.path.join(folder, "course", tool + ".py"), encoding="utf-8").read()
             for a, folder in bundles.items()}
    assert len(set(texts.values())) == 1, f"course/{tool}.py differs between bundles"
    passed, tried = tool_answers(next(iter(texts.values())))
    assert tried, f"course/{tool}.py shares no name with any task: it need not be a tool"
    assert passed == [], f"course/{tool}.py answers these tasks: {passed}"


def test_a_tool_holding_an_answer_is_caught():
    """06's finished loop (course.training) in place of the trainer would answer 06's three loop tasks."""
    with open(os.path.join(ROOT, "course", "training.py"), encoding="utf-8") as handle:
        passed, tried = tool_answers(handle.read())
    assert {task for _, task, _ in passed} == {"loss_batch", "evaluate_loop", "fit_loop"}, passed
    assert tried == 3


# One interpreter visits every bundle folder as `python -c "import course..."` run there would (sys.path[0]
# is the current folder), forgetting the previous bundle's `course` each time: torch is imported once.
PROBE = """
import importlib, json, os, sys
plan, out = json.loads(sys.argv[1]), {}
for folder, modules in plan.items():
    os.chdir(folder)
    for name in [m for m in sys.modules if m == "course" or m.startswith("course.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    for module in modules:
        try:
            out[folder + " " + module] = ["ok", os.path.realpath(importlib.import_module(module).__file__)]
        except ImportError as error:
            out[folder + " " + module] = ["ImportError", str(error)]
print(json.dumps(out))
"""


def _import_plan(assignment):
    """(an earlier lesson's module, or a shared one for the first lesson; this lesson's own modules)."""
    earlier = "course.datasets" if ASSIGNMENTS.index(assignment) > 0 else "course.plotting"
    own = [f"course.{m}" for m, owner in hidden_modules(assignment).items() if owner == assignment]
    return earlier, own


@pytest.fixture(scope="module")
def imports(bundles):
    plan = {}
    for assignment, folder in bundles.items():
        earlier, own = _import_plan(assignment)
        plan[folder] = [earlier] + own
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(plan)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, PYTHONSAFEPATH=""))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_bundle_library_imports_without_installing(bundles, imports, assignment):
    """From the bundle folder, earlier lessons' modules import from the bundle; this lesson's say why not."""
    folder = bundles[assignment]
    earlier, own = _import_plan(assignment)
    assert own, f"{assignment} hides none of its own modules"
    kind, where = imports[folder + " " + earlier]
    assert kind == "ok" and where.startswith(os.path.realpath(folder) + os.sep), (earlier, kind, where)
    for module in own:
        name = module.split(".")[1]
        assert imports[folder + " " + module] == [
            "ImportError", STUB.format(module=name, owner=assignment, assignment=assignment).split('"')[1]]


def test_bundle_builds_as_a_package(bundles, tmp_path):
    """pip builds the bundle's pyproject.toml into a wheel of the course package (no network needed)."""
    folder = bundles["03-linear-regression"]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), folder], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    import zipfile

    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    assert "course/datasets.py" in names and "course/linear_regression.py" in names
    assert not [n for n in names if n.endswith(".ipynb") or n.startswith(("autograder", "source"))]


# ------------------------------------------------------------------------------- the student's JupyterLab
def _get(url, token):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_student_jupyterlab_has_no_instructor_tools_and_an_honest_validate(bundles, tmp_path):
    """JupyterLab started in a bundle as its README says (JUPYTER_CONFIG_PATH=jupyter-config): nbgrader's
    instructor plugins are disabled and formgrader is not served, while Validate and the Assignment List stay;
    the Validate dialog's success text is replaced by what was checked (custom.css)."""
    folder = bundles["01-datasets"]
    readme = open(os.path.join(folder, "README.md")).read()
    command_line = re.search(r"^(JUPYTER_CONFIG_PATH=(\S+)) \.venv/bin/python -m jupyter lab ", readme, re.M)
    assert command_line, "the README starts JupyterLab with the bundle's Jupyter settings"
    env = dict(os.environ, JUPYTER_CONFIG_PATH=command_line.group(2), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    with jupyter_server("lab", folder, env, tmp_path / "lab.log",
                        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}") as (base, token):
        status, page = _get(f"{base}/lab", token)
        assert status == 200, page[:500]
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      page, re.S).group(1))
        disabled = set(config["disabledExtensions"])
        for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                       "@jupyter/nbgrader:course-list"):
            assert plugin in disabled, plugin
        for plugin in ("@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list",
                       "@jupyter/nbgrader:menu"):
            assert plugin not in disabled, plugin
        assert _get(f"{base}/formgrader", token)[0] == 404, "formgrader is not served"
        assert "custom/custom.css" in page
        status, css = _get(f"{base}/custom/custom.css", token)
        assert status == 200 and ".validation-success" in css and "hidden graders check more" in css, css


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_points_to_no_module_the_bundle_hides(bundles, assignment):
    """A lesson's text never sends the student to a library module their bundle holds only as a stub (03 said its
    finished code lives in course/linear_regression.py, which a student of 03 cannot import), unless the same
    sentence says from which lesson on it can be imported."""
    folder = bundles[assignment]
    text = bundle_texts(folder)[lesson_name(assignment) + ".ipynb"]
    for module in hidden_modules(assignment):
        assert f"course/{module}.py" not in text, f"{assignment} points to course/{module}.py, a stub in its bundle"
        for sentence in re.split(r"(?<=[.;])\s", text):
            if f"course.{module}" in sentence:
                assert re.search(r"[Ff]rom (lesson \d\d|the next lesson) on|[Aa]fter this lesson", sentence), \
                    f"{assignment} names course.{module}, a stub in its bundle, without saying when it can be imported: {sentence!r}"
