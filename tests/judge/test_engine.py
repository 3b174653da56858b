"""The grading engine: bad input, hostile or broken submissions, isolation, the CLI and its report."""
import copy
import json
import os
import subprocess
import sys

import pytest
import torch

from autograder.sandbox.inside import codec
from autograder.judge.tasks import available_assignments
from autograder.sandbox.student import Limits
from tests.notebooks import (ROOT, append_cell, edit_solution, find_cell, grade, notebook_path, release_notebook,
                             source_notebook)

A = "01-datasets"
ALL_TASKS = {"regression_data", "nonlinear_data", "blobs_data", "minibatches", "split_indices", "split_loaders",
             "pair_dataset", "reusable_module"}


@pytest.fixture(scope="module")
def reference():
    return source_notebook(A)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


# ------------------------------------------------------------------------------------------- codec
def test_codec_round_trips_data():
    value = {"a": [1, 2.5, None, True, "x"], 3: (torch.arange(6).reshape(2, 3), torch.float64),
             "t": torch.tensor([[1.5, float("nan")]], dtype=torch.float32), "b": torch.tensor([True, False]),
             "h": torch.ones(2, dtype=torch.bfloat16), "meta": torch.empty(4, 5, device="meta"),
             "dev": torch.device("cpu"), "size": torch.Size([2, 3]), "big": 2**70, "empty": torch.zeros(0, 3)}
    out = codec.decode(codec.encode(value))
    assert out["a"] == [1, 2.5, None, True, "x"]
    assert torch.equal(out[3][0], value[3][0]) and out[3][1] == torch.float64
    assert torch.allclose(out["t"], value["t"], equal_nan=True) and out["t"].dtype == torch.float32
    assert torch.equal(out["h"], value["h"]) and out["h"].dtype == torch.bfloat16
    assert out["meta"].device.type == "meta" and out["meta"].shape == (4, 5)
    assert out["size"] == (2, 3) and out["big"] == 2**70 and out["empty"].shape == (0, 3)


def test_codec_refuses_objects_and_malformed_messages():
    with pytest.raises(codec.CodecError):
        codec.encode({"f": lambda: 1})
    with pytest.raises(codec.CodecError):
        codec.encode(torch.nn.Linear(2, 2))
    good = codec.encode({"x": torch.arange(4)})
    for bad in (b"", b"\x00\x00\x00\x05{}", good[:-3], b"\x00\x00\x00\x0f{\"__pickle__\": 1}",
                b"\x00\x00\x00\x14{\"__tensor__\": {\"dtype\": \"float32\", \"shape\": [-1]}}"):
        with pytest.raises(codec.CodecError):
            codec.decode(bad)


# --------------------------------------------------------------------------------------- bad input
def test_malformed_notebook_json_gives_message_report_and_exit_2(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [ {"cell_type": "code", "source": "x = 1"')
    results = tmp_path / "results.json"
    proc = run_cli("grade", str(path), "--assignment", A, "--results", str(results))
    assert proc.returncode == 2
    assert "not valid notebook JSON" in proc.stdout + proc.stderr
    report = json.loads(results.read_text())
    assert report["score"] == 0 and "not valid notebook JSON" in report["output"]


def test_json_that_is_not_a_notebook(tmp_path):
    path = tmp_path / "list.ipynb"
    path.write_text("[1, 2, 3]")
    report = grade(str(path), assignment=A)
    assert report.error and "not a Jupyter notebook" in report.error
    assert report.to_gradescope()["score"] == 0


def test_notebook_of_another_assignment_is_refused(reference):
    other = copy.deepcopy(reference)
    other["metadata"]["course"]["assignment"] = "03-linear-regression"
    report = grade(other, assignment=A)
    assert report.error is not None
    assert "03-linear-regression" in report.error or "not those of" in report.error


def test_unknown_assignment(reference):
    report = grade(reference, assignment="99-nothing")
    assert report.error and "Unknown assignment" in report.error


def test_assignment_inferred_from_grade_ids(reference):
    nb = copy.deepcopy(reference)
    del nb["metadata"]["course"]
    report = grade(nb, task_ids=["minibatches"])
    assert report.assignment == A and report.failed_tasks() == set()


def test_deleted_grade_cell_is_still_graded(reference):
    nb = copy.deepcopy(reference)
    nb["cells"].remove(find_cell(nb, "minibatches"))
    report = grade(nb)
    assert report.failed_tasks() == set()
    assert any("grade cell `minibatches` was deleted" in m for m in report.messages)


# ----------------------------------------------------------------------------- broken submissions
def test_sys_exit_in_a_cell_costs_nothing_else(reference):
    report = grade(append_cell(reference, "import sys\nsys.exit()", index=3))
    assert report.failed_tasks() == set()
    assert any("SystemExit" in m for m in report.messages)


def test_process_killing_cell_is_left_out(reference):
    report = grade(append_cell(reference, "import os\nos._exit(3)", index=3))
    assert report.failed_tasks() == set()
    assert any("stopped or hung the Python process" in m for m in report.messages)


def test_infinite_loop_in_a_cell_is_stopped(reference):
    report = grade(append_cell(reference, "while True:\n    pass", index=3), limits=Limits(cell_timeout=3))
    assert report.failed_tasks() == set()
    assert any("longer than 3 s" in m for m in report.messages)


def test_infinite_loop_in_a_function_costs_only_its_task(reference):
    nb = edit_solution(reference, "minibatches", "n = len(X)", "while True:\n        pass")
    report = grade(nb, limits=Limits(call_timeout=3))
    assert report.failed_tasks() == {"minibatches"}
    assert "did not finish within 3 s" in report.by_task["minibatches"].output


def test_a_function_that_hung_fails_its_later_checks_at_once(reference):
    """minibatches never returns: its first check waits out the limit, every later check of it fails at once with
    the same message, and the process is restarted once (before, each of its 4 checks waited the limit and
    restarted the process: 4 restarts, every one a grading allows, so one more hang anywhere would have failed
    every remaining check)."""
    from autograder.sandbox.student import SandboxStudent

    nb = edit_solution(reference, "minibatches", "n = len(X)", "while True:\n        pass")
    restarts = []
    original = SandboxStudent.close

    def spy(self):
        restarts.append(self.restarts)
        original(self)

    SandboxStudent.close = spy
    try:
        report = grade(nb, limits=Limits(call_timeout=3))
    finally:
        SandboxStudent.close = original
    assert report.failed_tasks() == {"minibatches"}, report.failed_tasks()
    assert report.by_task["minibatches"].feedback == ["`minibatches` did not finish within 3 s and was stopped "
                                                      "(an endless loop, or far too much work?)."]
    assert restarts == [1], restarts


def test_a_hanging_function_is_stopped_at_its_calibrated_budget(reference):
    """With the default limits a probe may run 10 times what it takes on the reference, at least 10 s (its
    lesson's budgets.toml), not the 60 s of any request: one endless loop costs a grading about 10 s."""
    from autograder.judge.budgets import MINIMUM

    nb = edit_solution(reference, "minibatches", "n = len(X)", "while True:\n        pass")
    report = grade(nb)
    assert report.failed_tasks() == {"minibatches"}, report.failed_tasks()
    assert f"did not finish within {MINIMUM:g} s" in report.by_task["minibatches"].output
    assert report.execution_time < MINIMUM + 30, report.execution_time


@pytest.mark.parametrize("assignment", available_assignments())
def test_every_probe_has_a_measured_budget(assignment):
    """Each lesson's budgets.toml names exactly its probes (benchmarks/probe_budgets.py writes it), and what
    it allows is 10x the measured time, at least 10 s and at most the default request limit."""
    import ast
    import tomllib

    from autograder.judge.budgets import allowed_seconds, probe_budgets
    from autograder.judge.tasks import load_assignment

    package = load_assignment(assignment)
    with open(os.path.join(package.path, "probes.py")) as handle:
        probes = {node.name for node in ast.parse(handle.read()).body
                  if isinstance(node, ast.FunctionDef) and node.name.startswith("probe")}
    with open(os.path.join(package.path, "budgets.toml"), "rb") as handle:
        measured = tomllib.load(handle)["measured"]
    assert set(measured) == probes
    assert probe_budgets(package, 60.0) == {k: allowed_seconds(v) for k, v in measured.items()}
    assert allowed_seconds(0.01) == 10.0 and allowed_seconds(2.0) == 20.0 and allowed_seconds(30.0) == 60.0


def test_all_checks_of_a_grading_share_one_time_budget(reference):
    """Hanging functions everywhere cannot hold a grading slot for minutes: the budget bounds the whole."""
    import time

    nb = reference
    for task, old in (("minibatches", "n = len(X)"), ("blobs_data", "C, d = centers.shape"),
                      ("regression_data", "X = torch.randn")):
        nb = edit_solution(nb, task, old, "while True:\n        pass\n    " + old)
    started = time.monotonic()
    report = grade(nb, limits=Limits(call_timeout=4, grading_budget=6))
    checks = time.monotonic() - started
    assert report.error is None
    assert {"minibatches", "blobs_data", "regression_data"} <= report.failed_tasks()
    # unbounded, each of the many checks calling them would wait its 4 s (minutes in all)
    assert checks < 6 + 3 * 4 + 30, checks
    assert any("time budget" in line for t in report.tasks for line in t.feedback)


def test_huge_allocation_in_a_cell_fails_that_cell_only(reference):
    nb = append_cell(reference, "hog = torch.ones(10 * 2**30, dtype=torch.uint8)  # 10 GB", index=3)
    report = grade(nb)
    assert report.failed_tasks() == set()
    assert any("cell 4" in m and ("memory" in m.lower() or "alloc" in m.lower()) for m in report.messages)


def test_huge_allocation_in_a_function_costs_only_its_task(reference):
    nb = edit_solution(reference, "blobs_data", "C, d = centers.shape",
                       "C, d = centers.shape\n    hog = torch.ones(10 * 2**30, dtype=torch.uint8)")
    report = grade(nb)
    assert report.failed_tasks() == {"blobs_data"}
    assert "make_blobs" in report.by_task["blobs_data"].output


def test_missing_function_names_it(reference):
    nb = copy.deepcopy(reference)
    cell = find_cell(nb, "split_indices_code")
    cell["source"] = "".join(cell["source"]).replace("def split_indices(", "def split_idx(")
    report = grade(nb)
    assert "split_indices" in report.failed_tasks()
    assert "`split_indices` is not defined in your notebook" in report.by_task["split_indices"].output


def test_syntax_error_cell_is_reported(reference):
    nb = edit_solution(reference, "pair_dataset", "def __len__(self):", "def __len__(self)")
    report = grade(nb)
    assert report.failed_tasks() == {"pair_dataset"}
    assert any("SyntaxError" in m for m in report.messages)


# ------------------------------------------------------------------------------------ hostile code
HOSTILE = {
    "patched_torch": "import torch, torch.testing\n"
                     "torch.equal = torch.allclose = torch.isclose = lambda *a, **k: True\n"
                     "torch.testing.assert_close = lambda *a, **k: None\n"
                     "torch.Tensor.__eq__ = lambda *a, **k: True",
    "patched_pytest": "import pytest, _pytest.outcomes\n"
                      "pytest.main = lambda *a, **k: 0\n"
                      "_pytest.outcomes.fail = lambda *a, **k: None\n"
                      "import builtins; builtins.AssertionError = Exception",
    "fake_output": 'print(\'{"score": 13, "tests": []}\')\nimport sys\n'
                   'sys.stderr.write("All checks passed. 13/13\\n")',
    "patched_builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 37",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_release_gains_nothing(name):
    report = grade(append_cell(release_notebook(A), HOSTILE[name], index=3))
    assert report.error is None
    assert report.score == 0, {t.id: t.output for t in report.tasks if t.passed}


PATCH_THE_JUDGE = """
import sys
import torch
def _yes(*args, **kwargs):
    return None
try:
    import autograder.judge.checks as checks
    for module in [checks] + [m for n, m in list(sys.modules.items()) if n.startswith("autograder.graders.")]:
        for name in ("expect", "expect_close", "expect_between", "fail"):
            setattr(module, name, _yes)
        module.expect_tensor = lambda value, *args, **kwargs: value
except ImportError:
    pass
torch.isclose = lambda a, b, **kwargs: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)
"""


def test_wrong_answer_with_patched_checks_still_fails(reference):
    # Would pass if student code shared the judging process (verified by running it in-process).
    nb = edit_solution(reference, "regression_data", "y = (X ** power) @ w + b + noise *", "y = (X ** power) @ w + noise *")
    nb = edit_solution(nb, "regression_data", "return X, y.reshape(-1, 1)",
                       "exec(PATCH, globals())\n    return X, y.reshape(-1, 1)")
    nb = append_cell(nb, f"PATCH = {PATCH_THE_JUDGE!r}", index=3)
    report = grade(nb)
    assert report.failed_tasks() == {"regression_data"}


def test_network_is_cut_off(reference):
    probe = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
             "    NET = 'open'\nexcept OSError as exc:\n    NET = str(exc)\n"
             "names = [n for _, n in socket.if_nameindex()]\n")
    nb = append_cell(reference, probe, index=3)
    from autograder.sandbox.student import SandboxStudent
    from autograder.judge.notebook import program_cells
    student = SandboxStudent(program_cells(nb), assignment=A)
    student.start()
    try:
        assert student.probe(_net_probe) in (["lo"], [])
        assert "network: none" in student.protections
    finally:
        student.close()


def _net_probe(ns):
    return ns.require("names", kind="variable")


def test_feedback_never_shows_grader_code(reference):
    nb = edit_solution(reference, "minibatches", "yield X[idx], y[idx]", "yield X[idx], y[idx].float().sum()")
    report = grade(nb)
    text = json.dumps(report.to_gradescope())
    for leak in ("probe_", "def test_", "autograder/", "Traceback", "graders", "expect_"):
        assert leak not in text, leak


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_grades_reference_and_writes_gradescope_results(tmp_path):
    results = tmp_path / "out" / "results.json"
    proc = run_cli("grade", notebook_path(A), "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    assert "total" in proc.stdout and "13" in proc.stdout
    data = json.loads(results.read_text())
    assert data["score"] == 13 and data["execution_time"] > 0
    assert {t["number"] for t in data["tests"]} == ALL_TASKS
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] == "passed"


def test_cli_exit_0_for_a_zero_score(tmp_path):
    results = tmp_path / "results.json"
    proc = run_cli("grade", notebook_path(A, "release"), "--results", str(results))
    assert proc.returncode == 0
    data = json.loads(results.read_text())
    assert data["score"] == 0 and all(t["status"] == "failed" for t in data["tests"])


def test_batch_grading_writes_csv(tmp_path, reference):
    subs = tmp_path / "submitted"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "datasets.ipynb").write_text(json.dumps(reference))
    (subs / "bob.ipynb").write_text("{not json")
    proc = run_cli("batch", str(subs), "--assignment", A, "--out", str(tmp_path / "grades"))
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "grades" / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,score,max_score")
    assert any(r.startswith("alice,13.0,13.0") for r in rows)
    assert any(r.startswith("bob,0,") or r.startswith("bob,0.0,") for r in rows)
    assert (tmp_path / "grades" / "results" / "alice" / "results.json").exists()


def test_feedback_says_each_thing_once():
    from autograder.judge.engine import distinct

    lines = ["w from init_linreg_params(3) should be float32", "w from init_linreg_params(7) should be float32",
             "After one step the gradients should be zero.", "After a second step the gradients should be zero.",
             "the loss is 1.5e-3, allowed 1e-4", "the loss is 2.25e-3, allowed 1e-4"]
    assert distinct(lines) == [lines[0], lines[2], lines[3], lines[4]]


def test_results_written_to_a_device_leave_the_device_in_place(tmp_path):
    """`--results /dev/null` (or a pipe) is written to, never replaced by a file."""
    import stat
    from autograder.judge.report import write_json_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_json_atomic(str(fifo), {"score": 1})
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert b'"score": 1' in os.read(reader, 1000)
    finally:
        os.close(reader)
    write_json_atomic(os.devnull, {"score": 1})
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
