"""Student bundles: ``dist/student/<assignment>/`` holds what a student needs for one assignment, and no more.

A bundle is the release notebook(s), the ``course`` library as the assignment may import it (the modules
of this and later lessons are stubs: see ``autograder.sandbox.library``), an installable ``pyproject.toml`` and a
short README. It never holds ``source/``, graders or hidden tests. It is a build output (git-ignored),
written by ``python -m autograder release``.
"""
import os
import re
import shutil
import sys

from autograder.sandbox.library import ASSIGNMENTS, stage_library
from autograder.judge.notebook import nbgrader_meta, read_notebook, source_of

from autograder import PACKAGE_DIR, ROOT
DIST = os.path.join(ROOT, "dist", "student")
README_TEMPLATE = os.path.join(PACKAGE_DIR, "templates", "student_README.md")

DEPENDENCIES = ["torch==2.14.1", "torchvision==0.29.1", "numpy", "matplotlib", "tqdm", "tensorboard",
                "jupyterlab", "nbgrader"]

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "course-{assignment}"
version = "1.0.0"
description = "Deep learning with PyTorch, assignment {assignment}: the notebook's set-up and the course library."
requires-python = ">=3.10"
dependencies = [
{dependencies}
]

[tool.setuptools]
packages = ["course"]

[tool.setuptools.package-data]
course = ["labextension/**/*"]
"""

# The student's Jupyter settings: the bundle's jupyter-config/ folder, which JupyterLab reads where the student
# starts it as the README says (JUPYTER_CONFIG_PATH=jupyter-config; pip's editable install would not install
# such files into the environment). nbgrader's instructor tools are turned off: its JupyterLab plugins
# (labconfig/page_config.json) and server extensions (jupyter_server_config.py).
JUPYTER_CONFIG = "jupyter-config"
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"]
INSTRUCTOR_SERVER_EXTENSIONS = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
# What the Validate button's dialog says when no check cell fails: nbgrader's labextension writes "Success! Your
# notebook passes all the tests." (fixed in its code), but those cells run the quick checks only.
VALIDATE_SUCCESS_LAB = ("Success! The quick checks of every task passed. They are not all the tests: when your "
                        "work is graded, hidden graders check more, so a task can still lose points.")
JUPYTER_SERVER_CONFIG = '''"""JupyterLab settings for students of this course (read when JUPYTER_CONFIG_PATH names this folder)."""
import os

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file
HERE = os.path.dirname(os.path.abspath(__file__))

# nbgrader's instructor tools (Formgrader, Course List) are of no use to a student.
c.ServerApp.jpserver_extensions.update({extensions})
# custom/custom.css: the Validate dialog says what Validate checked.
c.LabApp.custom_css = True
c.ServerApp.tornado_settings.update({{"static_custom_path": [os.path.join(HERE, "custom")]}})
# The Submit for feedback button: its JupyterLab extension, built into the course package beside this folder
# (course/labextension/), and its server side, course.lab, which reads the grading service's address and token.
c.LabApp.extra_labextensions_path = [os.path.join(os.path.dirname(HERE), "course", "labextension")]
c.ServerApp.jpserver_extensions.update({{"course.lab": True}})
'''
CUSTOM_CSS = """/* nbgrader's Validate dialog: when no check cell fails, its own text says the notebook passes all the tests,
   but the check cells run the quick checks only. Show what was checked instead. */
#validation-message.validation-success p {{
  font-size: 0;
}}
#validation-message.validation-success p::after {{
  font-size: var(--jp-content-font-size1, 14px);
  content: "{text}";
}}
"""

NBGRADER_CONFIG = '''"""nbgrader settings for this assignment (JupyterLab's Validate button and Assignment List)."""
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "{course_id}"
# Where the course's JupyterHub exchanges assignments (Assignment List: Fetch, Submit); your instructor
# may give another folder in COURSE_EXCHANGE_DIR. Working alone, submit the notebook as your course says.
c.Exchange.root = os.environ.get("COURSE_EXCHANGE_DIR") or "/srv/nbgrader/exchange"
# Validate runs the tasks' cells and their quick checks; a task's cell can still take longer than nbgrader's
# default of 30 s on a slow laptop.
c.Execute.timeout = 1800
# `nbgrader validate` cuts lines at 90 characters, which would cut the tasks' messages short.
c.Validator.width = 160

# When no check cell fails, nbgrader says "Success! Your notebook passes all the tests.", but the check cells
# run only the quick checks: say what was checked, and that the hidden graders check more when it is graded.
import textwrap  # noqa: E402

from nbgrader.validator import Validator  # noqa: E402

QUICK_CHECKS_PASSED = (
    "Success! The quick checks of every task passed. They are not all the tests: when your work is graded, "
    "hidden graders check more (other inputs, shapes, seeds and edge cases), so a task can still lose points. "
    "Read each task's instructions again before you submit; their verdict comes with your grade "
    "(the results of your submission, or your feedback).")


def _print_num_failed(self, num_failed, _nbgrader_own=getattr(Validator._print_num_failed, "nbgrader_own",
                                                              Validator._print_num_failed)):
    if num_failed == 0:
        self.stream.write(textwrap.fill(QUICK_CHECKS_PASSED, width=self.width) + "\\n")
    else:
        _nbgrader_own(self, num_failed)


_print_num_failed.nbgrader_own = getattr(Validator._print_num_failed, "nbgrader_own", Validator._print_num_failed)
Validator._print_num_failed = _print_num_failed

# Validate leaves out the demos (cells tagged skip-when-grading: full-size training, plots, TensorBoard), as
# grading does: Run All shows them, they can take minutes, and no check depends on them. Their text is put
# back before nbgrader compares the read-only cells with the release.
DEMO_TAG = "skip-when-grading"


def _preprocess(self, nb, _nbgrader_own=getattr(Validator._preprocess, "nbgrader_own", Validator._preprocess)):
    demos = {{i: cell.source for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and DEMO_TAG in cell.metadata.get("tags", [])}}
    for i in demos:
        nb.cells[i].source = ""
    nb = _nbgrader_own(self, nb)
    for i, source in demos.items():
        nb.cells[i].source = source
    return nb


_preprocess.nbgrader_own = getattr(Validator._preprocess, "nbgrader_own", Validator._preprocess)
Validator._preprocess = _preprocess
'''
COURSE_ID = "pytorch-course"

DATA_NOTE = ("## Data\n\nThis lesson loads {what} with torchvision: the first run downloads it (you need to "
             "be online once), or set the environment variable `COURSE_DATA_DIR` to a folder that holds "
             "the files.\n\n")
DATA_SETS = {"load_fashion_mnist": "Fashion-MNIST", "load_mnist": "MNIST", "mnist_": "MNIST"}


def _notebook_facts(release_dir):
    """(notebook names, title, [(task, points)], data sets named) of a release folder."""
    names = sorted(n for n in os.listdir(release_dir) if n.endswith(".ipynb"))
    title, tasks, text = None, [], ""
    for name in names:
        nb = read_notebook(os.path.join(release_dir, name))
        for cell in nb["cells"]:
            source = source_of(cell)
            text += source + "\n"
            if title is None and cell["cell_type"] == "markdown":
                heading = re.search(r"^#\s+(.+)$", source, re.M)
                title = heading.group(1).strip() if heading else None
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution"):
                tasks.append((meta["grade_id"], meta.get("points", 0)))
    data = sorted({what for key, what in DATA_SETS.items() if key in text})
    return names, title, tasks, data


def write_jupyter_config(folder):
    """The student's Jupyter settings in ``folder`` (a Jupyter config folder): no instructor tools of nbgrader,
    and a Validate dialog that says what was checked."""
    import json

    files = {
        os.path.join("labconfig", "page_config.json"):
            json.dumps({"disabledExtensions": {plugin: True for plugin in INSTRUCTOR_PLUGINS}}, indent=2) + "\n",
        "jupyter_server_config.py": JUPYTER_SERVER_CONFIG.format(
            extensions=repr({name: False for name in INSTRUCTOR_SERVER_EXTENSIONS})),
        os.path.join("custom", "custom.css"): CUSTOM_CSS.format(text=VALIDATE_SUCCESS_LAB.replace('"', "'")),
    }
    for rel, text in files.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


def add_feedback_button(library):
    """Put the built JupyterLab extension (the Submit for feedback button) into the bundle's ``course`` package
    (``library``); say so on stderr when it has not been built."""
    from autograder.distribute.labextension import NAME, built

    if built() is None:
        print("warning: the JupyterLab extension is not built (python -m autograder build-lab, which ./setup.sh "
              "runs): this bundle has no Submit for feedback button", file=sys.stderr)
        return
    shutil.copytree(built(), os.path.join(library, "labextension", NAME))


def write_bundle(assignment, dest=None, root=ROOT):
    """Write the student bundle of ``assignment`` from ``release/<assignment>/`` into ``dest``; returns dest."""
    release_dir = os.path.join(root, "release", assignment)
    dest = dest or os.path.join(root, "dist", "student", assignment)
    if not os.path.isdir(release_dir):
        raise FileNotFoundError(f"release/{assignment} does not exist: run python -m autograder release")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    names, title, tasks, data = _notebook_facts(release_dir)
    for name in names:
        shutil.copy(os.path.join(release_dir, name), os.path.join(dest, name))
    library = stage_library(assignment, dest)
    add_feedback_button(library)
    with open(os.path.join(dest, "pyproject.toml"), "w", encoding="utf-8") as handle:
        handle.write(PYPROJECT.format(assignment=assignment,
                                      dependencies="\n".join(f'    "{d}",' for d in DEPENDENCIES)))
    write_jupyter_config(os.path.join(dest, JUPYTER_CONFIG))
    with open(os.path.join(dest, "nbgrader_config.py"), "w", encoding="utf-8") as handle:
        handle.write(NBGRADER_CONFIG.format(course_id=COURSE_ID))
    with open(README_TEMPLATE, encoding="utf-8") as handle:
        template = handle.read()
    earlier = ASSIGNMENTS[:ASSIGNMENTS.index(assignment)]
    library_note = ("with the finished code of the earlier lessons\n  (e.g. `from course.datasets import "
                    "make_blobs`)" if earlier else "which the lessons fill with their finished code")
    readme = template.format(
        title=title or assignment, assignment=assignment, notebook=names[0], library_note=library_note,
        first_task=tasks[0][0] if tasks else "name",
        data_note=DATA_NOTE.format(what=" and ".join(data)) if data else "",
        task_rows="\n".join(f"| `{task}` | {points:g} |" for task, points in tasks),
        torch_pins=" ".join(d for d in DEPENDENCIES if d.split("==")[0] in ("torch", "torchvision")))
    with open(os.path.join(dest, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(readme)
    return dest


def write_bundles(assignments=None, root=ROOT):
    """Write ``dist/student/<assignment>/`` for each assignment (all by default)."""
    written = []
    for assignment in assignments or ASSIGNMENTS:
        written.append(write_bundle(assignment, root=root))
        print(f"dist/student/{assignment} written")
    return written
