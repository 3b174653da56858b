"""Regenerate ``release/<assignment>/`` from ``source/`` with nbgrader, in a throw-away course folder.

``TaskStubs`` is the ``ClearSolutions`` step of ``nbgrader generate_assignment`` (see nbgrader_config.py):
each solution region becomes ``# YOUR CODE HERE`` and a ``raise NotImplementedError("Task `<id>`: ...")``
that names the task and what to write there, so a student who runs an unfinished notebook is told
which task stops it.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearSolutions

from autograder import ROOT

_DEF = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+([A-Za-z_]\w*)")
_ASSIGNED = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)")


def _indent_of(line):
    return len(line) - len(line.lstrip())


def _enclosing(lines, indent):
    """(dotted name, kind) of the def/class that a line at ``indent`` after ``lines`` is in, or (None, None)."""
    found = []
    for line in reversed(lines):
        if not line.strip() or _indent_of(line) >= indent:
            continue
        indent = _indent_of(line)
        match = _DEF.match(line)
        if match:
            found.append((match.group(3), match.group(2)))
        if indent == 0:
            break
    if not found:
        return None, None
    return ".".join(name for name, _ in reversed(found)), found[0][1]


def _defined_names(region, indent):
    """Names a solution region defines at its own indentation (def, class, assignment)."""
    names = []
    for line in region:
        if not line.strip() or _indent_of(line) != indent:
            continue
        body = line[indent:]
        match = _DEF.match(body)
        name = match.group(3) if match else None
        if name is None:
            match = _ASSIGNED.match(body)
            name = match.group(1) if match else None
        if name and name not in names:
            names.append(name)
    return names


def stub_message(task_id, before, region, indent, public_text=""):
    """What the stub of one solution region says: the task, and what to write there."""
    prefix = f"Task `{task_id}`: " if task_id else ""
    owner, kind = _enclosing(before, indent)
    if owner:
        if kind == "class":
            return f"{prefix}write the methods of class `{owner}` here."
        return f"{prefix}write the body of `{owner}` here."
    # Name only what the instructions name: the notebook without its solutions.
    names = [f"`{n}`" for n in _defined_names(region, indent)
             if not n.startswith("_") and re.search(r"\b" + re.escape(n) + r"\b", public_text)]
    if names:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"{prefix}define {listed} here."
    return f"{prefix}write your code here." if prefix else "Write your code here."


class TaskStubs(ClearSolutions):
    """ClearSolutions whose stubs raise NotImplementedError naming the task and what to write."""

    def preprocess(self, nb, resources):
        # Names shown to students anyway: the notebook without its solution regions.
        begin, end = re.escape(self.begin_solution_delimeter), re.escape(self.end_solution_delimeter)
        region = re.compile(begin + r".*?" + end, re.S)
        resources["public_text"] = "\n".join(region.sub("", cell.source) for cell in nb.cells)
        return super().preprocess(nb, resources)

    def _task_of(self, cell):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        return grade_id[:-len("_code")] if grade_id.endswith("_code") else None

    def _stub(self, task_id, before, region, indent, public_text):
        message = stub_message(task_id, before, region, indent, public_text)
        return ["# YOUR CODE HERE", f"raise NotImplementedError({json.dumps(message)})"]

    def _replace_solution_region(self, cell, language):
        if cell.cell_type != "code" or language != "python":
            return super()._replace_solution_region(cell, language)
        task_id, public_text = self._task_of(cell), self._public_text
        lines, new_lines, region = cell.source.split("\n"), [], None
        replaced = False
        for line in lines:
            if self.begin_solution_delimeter in line:
                if region is not None:
                    raise RuntimeError("encountered nested begin solution statements")
                region, indent, replaced = [], _indent_of(line), True
                before = list(new_lines)
            elif self.end_solution_delimeter in line and region is not None:
                stub = self._stub(task_id, before, region, indent, public_text)
                new_lines.extend(" " * indent + stub_line for stub_line in stub)
                region = None
            elif region is not None:
                region.append(line)
            else:
                new_lines.append(line)
        if region is not None:
            raise RuntimeError("no end solution statement found")
        cell.source = "\n".join(new_lines)
        return replaced

    def preprocess_cell(self, cell, resources, cell_index):
        self._public_text = resources.get("public_text", "")
        if (cell.cell_type == "code" and nbgrader_utils.is_solution(cell)
                and self.begin_solution_delimeter not in cell.source and resources.get("language") == "python"):
            # A solution cell without a region: the whole cell is the answer.
            cell.source = "\n".join(self._stub(self._task_of(cell), [], [], 0, ""))
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


def alembic_head():
    """The gradebook schema version nbgrader writes into a new gradebook.db, from alembic's Python API.

    nbgrader asks the ``alembic`` program on PATH instead, which is missing unless the virtual environment
    is activated, so ``.venv/bin/nbgrader ...`` failed on a new gradebook (nbgrader_config.py uses this).
    """
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def source_assignments(root=ROOT):
    """Assignment folders present under source/."""
    folder = os.path.join(root, "source")
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def generate_into(course_dir, assignments, root=ROOT, gradebook=None):
    """Run ``nbgrader generate_assignment`` for ``assignments`` in a copy of the course at ``course_dir``.

    With ``gradebook`` (a path), the assignments and their grade cells are recorded in that gradebook.db,
    as ``nbgrader autograde`` needs; without it no database is written.
    """
    shutil.copy(os.path.join(root, "nbgrader_config.py"), course_dir)
    for assignment in assignments:
        shutil.copytree(os.path.join(root, "source", assignment), os.path.join(course_dir, "source", assignment),
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    database = ["--CourseDirectory.db_url=sqlite:///" + os.path.abspath(gradebook)] if gradebook else ["--no-db"]
    for assignment in assignments:
        result = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
             "--CourseDirectory.root=" + course_dir, *database],
            cwd=course_dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.stdout}{result.stderr}")
    return os.path.join(course_dir, "release")


def generate_releases(assignments=None, root=ROOT):
    """Replace release/<assignment>/ with a fresh nbgrader release and dist/student/<assignment>/ with its
    bundle, and record the assignments in the course's gradebook.db (for collect and autograde)."""
    assignments = assignments or source_assignments(root)
    with tempfile.TemporaryDirectory() as course_dir:
        release = generate_into(course_dir, assignments, root, gradebook=os.path.join(root, "gradebook.db"))
        for assignment in assignments:
            target = os.path.join(root, "release", assignment)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(os.path.join(release, assignment), target)
            print(f"release/{assignment} regenerated")
    from autograder.distribute.bundle import write_bundles

    write_bundles(assignments, root)
