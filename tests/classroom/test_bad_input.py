"""Bad input gets a clear answer and reaches nothing it should not: links, formulas, old notebooks, grade ids."""
import csv
import json

import nbformat
import pytest

from autograder.classroom.batch import grade_folder, spreadsheet_safe
from autograder.classroom.gradings import SYMLINK_REFUSED, read_submission
from autograder.judge.engine import grade_notebook
from autograder.classroom.nbgrader_route import CheckGradeIds, SandboxGradeError
from tests.notebooks import notebook_path, source_notebook

A = "01-datasets"


def test_a_symlinked_submission_is_refused_not_followed(tmp_path):
    secret = tmp_path / "classmate.ipynb"
    secret.write_text(json.dumps(source_notebook(A)))
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "mallory.ipynb").symlink_to(secret)
    (folder / "eve").symlink_to(tmp_path)                 # a student folder that is a link
    (folder / "root-file.ipynb").symlink_to("/etc/shadow")
    for link in ("mallory.ipynb", "eve", "root-file.ipynb"):
        path = folder / link
        target = path / "classmate.ipynb" if link == "eve" else path
        data, reason = read_submission(str(target))
        assert data is None and reason == SYMLINK_REFUSED, link
    out = tmp_path / "grades"
    grade_folder(str(folder), A, str(out), jobs=1)
    with open(out / "grades.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"mallory", "eve", "root-file"}
    for row in rows.values():
        assert float(row["score"]) == 0 and "symbolic link" in row["error"], row


def test_a_symlinked_notebook_is_refused_by_the_cli(tmp_path):
    link = tmp_path / "submission.ipynb"
    link.symlink_to(notebook_path(A))
    report = grade_notebook(str(link))
    assert report.score == 0 and "symbolic link" in report.error


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)", "\t=1"])
def test_csv_cells_never_start_a_formula(name):
    assert spreadsheet_safe(name) == "'" + name
    assert spreadsheet_safe("alice") == "alice" and spreadsheet_safe(3.0) == 3.0


def test_an_nbformat_3_notebook_is_told_to_resave(tmp_path):
    old = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
           "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "language": "python", "outputs": []}]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(old))
    report = grade_notebook(str(path), assignment=A)
    assert "format 3" in report.error and "save it again" in report.error


def _nb_with(grade_ids):
    nb = nbformat.v4.new_notebook()
    for grade_id in grade_ids:
        cell = nbformat.v4.new_code_cell("x = 1")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                     **({"grade_id": grade_id} if grade_id else {})}
        nb.cells.append(cell)
    return nb


@pytest.mark.parametrize("ids,words", [(["a", "b", "a"], "cells 1 and 3 both carry the grade id `a`"),
                                       (["a", None], "cell 2 is marked as an nbgrader cell but has no grade id")])
def test_repeated_or_missing_grade_ids_get_a_clear_message(ids, words):
    with pytest.raises(SandboxGradeError) as caught:
        CheckGradeIds().preprocess(_nb_with(ids), {"nbgrader": {"student": "bob"}})
    assert words in str(caught.value) and str(caught.value).startswith("bob: ")
    CheckGradeIds().preprocess(_nb_with(["a", "b"]), {"nbgrader": {"student": "bob"}})
