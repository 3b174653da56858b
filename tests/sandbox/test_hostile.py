"""Hostile submissions gain nothing and leave the host as it was; honest classmates keep their scores.

Each chunk grades an honest submission, then a series of attacks (each the last cell of the 01 release,
which honestly scores 0), then the honest submission again, one after another as in a batch. After every attack: no point
gained, no process of a grading uid left, no stray file; after the chunk: the checkout, the virtual
environment and the data folders unchanged.
"""
import time

import pytest

from autograder.sandbox.student import Limits
from tests.hostile import (ATTACKS, changes, fingerprint, grading_files, grading_uid, leftover_processes,
                           of_another_grading, stray_files)
from tests.notebooks import append_cell, grade, release_notebook, source_notebook

A = "01-datasets"
LIMITS = Limits(cell_timeout=6, call_timeout=60, startup_timeout=300)    # attacks that hang cost about 10 s
CHUNKS = 4
NAMES = sorted(ATTACKS)


def test_the_corpus_is_large_enough():
    assert len(ATTACKS) >= 54


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_attacks_gain_nothing_and_leave_no_trace(chunk):
    names = NAMES[chunk::CHUNKS]
    before = fingerprint()
    honest = source_notebook(A)
    release = release_notebook(A)
    assert grade(honest).score == 13
    problems = {}
    for name in names:
        earlier = grading_files()         # left by other gradings, e.g. judges killed in earlier runs
        started = time.monotonic()
        report = grade(append_cell(release, ATTACKS[name]), limits=LIMITS)   # last: nothing redefines what it does
        print(f"{name}: graded in {time.monotonic() - started:.1f} s")
        found = []
        if report.error is not None:
            found.append(f"error: {report.error}")
        if report.score != 0:
            found.append(f"gained {report.score} points: {sorted(t.id for t in report.tasks if t.passed)}")
        text = " ".join(report.messages + [line for t in report.tasks for line in t.feedback])
        if "LEAK" in text and ("def test_" in text or "expect(" in text or "BEGIN SOLUTION" in text):
            found.append("grader or solution text reached the report")
        if any(len(m) > 400 for m in report.messages):
            found.append("a note longer than 400 characters")
        if "LABELS /" in text:
            found.append("held-out label files were visible")
        uid = grading_uid(report)
        if uid is None:
            found.append(f"no grading uid in {report.sandbox}")
        elif leftover_processes(uid):
            found.append(f"processes left: {leftover_processes(uid)}")
        # files of gradings that ran before or beside this one (other tests, other workers) are not its own
        left = [p for p in stray_files(uid) if p not in earlier and not of_another_grading(p, uid)]
        if left:
            found.append(f"files left: {left[:5]}")
        if found:
            problems[name] = found
    for name, found in problems.items():
        print(name, found)
    assert not problems, sorted(problems)
    assert grade(honest).score == 13
    assert not changes(before, fingerprint())


@pytest.mark.slow
def test_the_thief_finds_the_answers_wherever_the_box_would_show_them():
    """The thief is not toothless: without a sandbox it finds the checkout's answers; in every tier, nothing."""
    import dataclasses

    from autograder.sandbox import isolation

    thief = append_cell(release_notebook(A), ATTACKS["steal_the_answers_from_anywhere"])
    limits = dataclasses.replace(LIMITS, cell_timeout=30)     # its own search stops after 8 s, even on a busy machine
    unboxed = grade(thief, limits=dataclasses.replace(limits, isolation="none"))
    assert unboxed.score >= 10, [t.id for t in unboxed.tasks if t.passed]
    tiers = ["bwrap"] if isolation.bwrap_works() else []
    try:
        tiers.append(isolation.choose_tier("user"))
    except isolation.IsolationUnavailable:
        pass
    assert tiers, "no sandbox tier works here"
    for tier in tiers:
        boxed = grade(thief, limits=dataclasses.replace(limits, isolation=tier))
        assert boxed.score == 0, (tier, [t.id for t in boxed.tasks if t.passed])
