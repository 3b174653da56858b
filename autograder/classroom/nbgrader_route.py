"""nbgrader's autograde through the sandboxed engine: a preprocessor in place of in-kernel execution.

``SandboxGrade`` takes the place of nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see ``nbgrader_config.py``). It grades the sanitised notebook with ``grade_notebook`` (the student's
code runs in the sandbox; no cell runs in a kernel, hidden test cells never run at all) and writes each
grade cell's outcome as that cell's output, which is what nbgrader's ``SaveAutoGrades`` scores:

- a passed task: a stdout stream "Task `<id>`: all checks passed." (full points);
- a failed task: an error output whose ename, evalue and traceback hold only the task's feedback lines
  (no points, and the feedback shows why, with no test or grader code), followed by the report's notes
  about the whole submission (a cell that raised, or stopped or hung the Python process and was left out),
  so the true cause of a failure stands next to it in the feedback, formgrader and the autograded notebook
  as it does in the CLI's table and results.json.

So the gradebook, formgrader, ``generate_feedback`` and ``export`` work as before and a grade cell's
points equal the CLI's for its task. With ``results_dir`` set, a report graded before for the same
code (same ``autograder.classroom.gradings.submission_key``) is taken from there instead of grading again:
``python -m autograder autograde`` grades a class in parallel into that folder first.
"""
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells, SaveAutoGrades
from traitlets import Unicode


class SandboxGradeError(RuntimeError):
    """The submission could not be graded at all (the engine's reason is in the message)."""


def failure_lines(task_id, feedback):
    """The lines shown for a failed task: a heading and one line per distinct failure."""
    lines = [f"Task {task_id} failed:"]
    lines += [f"- {line}" for line in feedback] or ["- This task was not graded."]
    return lines


def task_outputs(result, notes=()):
    """The outputs of a grade cell for one TaskResult; ``notes`` (the report's start-up notes) follow a failure."""
    if result.passed:
        return [new_output("stream", name="stdout", text=f"Task `{result.id}`: all checks passed.\n")]
    lines = failure_lines(result.id, result.feedback)
    notes = [str(note) for note in notes if str(note).strip()]
    if notes:
        lines += ["", "About the whole notebook (this may explain the failure):"] + [f"- {note}" for note in notes]
    return [new_output("error", ename=f"Task {result.id} failed", evalue="\n".join(lines[1:]), traceback=lines)]


def write_outcomes(nb, report):
    """Put each grade cell's outcome from ``report`` into its outputs; returns the grade ids written."""
    from autograder.judge.notebook import is_test_cell, nbgrader_meta

    results = report.by_task
    written = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_test_cell(cell):
            continue
        cell.execution_count = None
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in results:
            cell.outputs = task_outputs(results[grade_id], notes=report.messages)
            written.append(grade_id)
        else:
            cell.outputs = [new_output("error", ename="Not graded", evalue="This cell is not one of the tasks.",
                                       traceback=["This cell is not one of the assignment's tasks."])]
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_test_cell(cell):
            cell.outputs = []          # nothing ran in a kernel: no stale outputs either
            cell.execution_count = None
    return written


class CheckGradeIds(NbGraderPreprocessor):
    """Before nbgrader's own steps: every graded, solution or locked cell has a grade id, and no id repeats.

    nbgrader would otherwise stop on such a notebook with a bare ``KeyError: 'grade_id'``; this says which
    cell is wrong and what to do."""

    def preprocess(self, nb, resources):
        from autograder.judge.notebook import nbgrader_meta

        student = resources.get("nbgrader", {}).get("student") or "the submission"
        seen = {}
        for number, cell in enumerate(nb.cells, start=1):
            meta = nbgrader_meta(cell)
            if not any(meta.get(flag) for flag in ("grade", "solution", "locked", "task")):
                continue
            grade_id = meta.get("grade_id")
            if not isinstance(grade_id, str) or not grade_id:
                raise SandboxGradeError(
                    f"{student}: cell {number} is marked as an nbgrader cell but has no grade id (its metadata was "
                    f"edited or damaged). Start from a fresh copy of the assignment's notebook and paste the answers in.")
            if grade_id in seen:
                raise SandboxGradeError(
                    f"{student}: cells {seen[grade_id]} and {number} both carry the grade id `{grade_id}` (a graded "
                    f"cell was copied). Delete the copy, keeping one cell per task, and submit again.")
            seen[grade_id] = number
        return nb, resources


class RestoreCells(OverwriteCells):
    """nbgrader's ``OverwriteCells`` (restore each graded or locked cell from the gradebook), without its warning
    "Attribute 'checksum' for cell <id> has changed!" for the one change every submission has: a grade cell
    whose hidden tests the release left out. The gradebook keeps the cell with its hidden tests, so nbgrader
    restores them and warned for every grade cell of every student. A locked cell the student did edit is
    still reported (and restored) as before."""

    def preprocess_cell(self, cell, resources, cell_index):
        self._released_as_is = None
        meta = cell.metadata.get("nbgrader", {}) if hasattr(cell, "metadata") else {}
        grade_id = meta.get("grade_id")
        if grade_id is not None and meta.get("grade") and meta.get("locked"):
            from nbgrader.api import MissingEntry

            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if (source_cell is not None and source_cell.locked and source_cell.cell_type == cell.cell_type
                    and self._released_source(source_cell.source) == cell.source.rstrip()):
                self._released_as_is = grade_id
        return super().preprocess_cell(cell, resources, cell_index)

    def _released_source(self, source):
        """``source`` as the release shows it: without its hidden tests."""
        released = NotebookNode(cell_type="code", source=source, metadata=NotebookNode())
        ClearHiddenTests(parent=self)._remove_hidden_test_region(released)
        return released.source.rstrip()

    def report_change(self, name, attr, old, new):
        if attr == "checksum" and name == getattr(self, "_released_as_is", None):
            self.log.debug("Grade cell %s is as released: its hidden tests come from the gradebook", name)
            return
        super().report_change(name, attr, old, new)


NOTES_HEADING = "About the whole notebook (this may explain why this task failed):"


def notes_for_comments(report):
    """{"notes": the report's start-up notes, "cells": grade ids of the solution cells of its failed tasks}."""
    from autograder.judge.tasks import load_assignment

    written_in = load_assignment(report.assignment).module.CODE_WRITTEN_IN
    cells = sorted({written_in.get(t.id, t.id) + "_code" for t in report.tasks if not t.passed})
    return {"notes": [str(note) for note in report.messages if str(note).strip()], "cells": cells}


class SaveGradesAndNotes(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, which also puts the start-up notes (a cell left out because it raised, or
    stopped or hung the Python process) into the gradebook comment of each failed task's solution cell, where
    formgrader and the feedback show them beside the student's code."""

    def _add_comment(self, cell, resources):
        super()._add_comment(cell, resources)
        found = resources.get("course_notes") or {}
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if not found.get("notes") or grade_id not in found.get("cells", ()):
            return
        comment = self.gradebook.find_comment(grade_id, self.notebook_id, self.assignment_id, self.student_id)
        lines = [comment.auto_comment] if comment.auto_comment else []
        comment.auto_comment = "\n".join(lines + [NOTES_HEADING] + [f"- {note}" for note in found["notes"]])
        self.gradebook.db.commit()


class SandboxGrade(NbGraderPreprocessor):
    """Grade the notebook in the sandbox and write each grade cell's outcome as its output."""

    results_dir = Unicode("", help="Folder of reports graded before, by submission key (empty: none).").tag(
        config=True)
    isolation = Unicode("auto", help="Sandbox isolation: auto, bwrap or user ('none' only for trusted "
                                     "notebooks).").tag(config=True)

    def preprocess(self, nb, resources):
        from autograder.classroom.gradings import ResultsCache, submission_key
        from autograder.judge.engine import grade_notebook
        from autograder.sandbox.student import Limits

        assignment = resources["nbgrader"]["assignment"]
        student = resources["nbgrader"].get("student")
        key = submission_key(nb, assignment)
        cache = ResultsCache(self.results_dir) if self.results_dir else None
        report = cache.get(key) if cache else None
        if report is None:
            self.log.info("Grading %s's notebook in the sandbox", student)
            limits = Limits(isolation=self.isolation) if self.isolation != "auto" else Limits()
            report = grade_notebook(nb, assignment=assignment, limits=limits)
            if cache and not report.error:
                cache.put(key, report)
        else:
            self.log.info("Using the report graded before for %s (%s)", student, key[:12])
        if report.error:
            raise SandboxGradeError(f"{student}: {report.error}")
        write_outcomes(nb, report)
        resources["course_notes"] = notes_for_comments(report)
        for message in report.messages:
            self.log.info("%s: %s", student, message)
        return nb, resources
