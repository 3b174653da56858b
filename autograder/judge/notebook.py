"""Reading a submitted notebook: which assignment it is, and which cells the student's process runs."""
import json
import os

SKIP_TAG = "skip-when-grading"


class NotebookError(ValueError):
    """The file is not a notebook we can grade; the message says why."""


def read_notebook(path):
    """Load a notebook file as a dict, with a clear NotebookError when it is not a valid notebook."""
    if os.path.islink(path):
        raise NotebookError(f"{path} is a symbolic link, not a notebook file: submit the notebook itself.")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot be read ({exc})") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path} is not valid notebook JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}). Was it saved completely? Re-download or re-save it from Jupyter.") \
            from None
    return check_notebook(nb, path)


def check_notebook(nb, name="the notebook"):
    """Validate the notebook structure enough to grade it; returns it."""
    version = nb.get("nbformat") if isinstance(nb, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version < 4:
        raise NotebookError(f"{name} is an old notebook (format {version}, from before 2015). Open it in a current "
                            f"JupyterLab or Jupyter Notebook and save it again: that converts it to format 4, which "
                            f"this course grades.")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{name} is JSON but not a Jupyter notebook (no list of cells).")
    if nb.get("nbformat") not in (4, None):
        raise NotebookError(f"{name} uses notebook format {nb.get('nbformat')}; only format 4 is supported.")
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise NotebookError(f"{name} has a malformed cell.")
    return nb


def source_of(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def nbgrader_meta(cell):
    meta = cell.get("metadata", {})
    value = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return value if isinstance(value, dict) else {}


def is_test_cell(cell):
    """A grade cell holding tests (not an answer): never run in the student's process."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def tags_of(cell):
    meta = cell.get("metadata", {})
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return tags if isinstance(tags, list) else []


def program_cells(nb):
    """[(cell number, source)] of the code the student's process runs: not tests, not demos."""
    cells = []
    for number, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") != "code" or is_test_cell(cell) or SKIP_TAG in tags_of(cell):
            continue
        source = source_of(cell)
        if source.strip():
            cells.append((number, source))
    return cells


def grade_ids(nb):
    """nbgrader grade ids of the notebook's grade cells."""
    return [nbgrader_meta(c).get("grade_id") for c in nb["cells"] if is_test_cell(c)]


def declared_assignment(nb):
    """The assignment id in the notebook's metadata, if any."""
    meta = nb.get("metadata", {})
    course = meta.get("course", {}) if isinstance(meta, dict) else {}
    return course.get("assignment") if isinstance(course, dict) else None
