"""``python -m autograder autograde ASSIGNMENT``: a class graded in parallel into nbgrader's gradebook.

Run in the course folder (where ``nbgrader_config.py`` is). Two steps, both resumable:

1. Every ``submitted/<student>/<assignment>/*.ipynb`` is graded in parallel (local processes, one per
   core by default, or a Dask cluster with ``--scheduler``), each in its own sandbox, into a results
   cache keyed by the submission's content (``.autograder/<assignment>/results/``). A submission whose
   key is already there is not graded again (``--force`` regrades).
2. nbgrader's own ``Autograde`` converter runs here, student by student as their gradings finish (while
   the others are graded), with ``SandboxGrade`` reading that cache: nbgrader writes the gradebook and ``autograded/`` exactly as ``nbgrader autograde`` does,
   and this process is the gradebook's only writer. A ledger (``.autograder/<assignment>/gradebook.json``,
   written atomically after each student) records which content is in the gradebook, so a re-run
   passes over students whose grades are in place and unchanged.

A kill -9 at any moment loses at most the gradings in flight: the cache and the ledger only ever hold
finished work, and nbgrader's gradebook keeps one grade per grade cell and submission whatever happens.
"""
import json
import os
import re
import sys
import warnings

from autograder.classroom.gradings import (Job, ResultsCache, Summary, content_key, read_submission,
                                  remove_stale_temporaries, run_gradings)
from autograder.judge.report import write_json_atomic

STATE = ".autograder"


def _submissions(root, assignment):
    """{student: [notebook path]} under nbgrader's submitted/ folder."""
    from autograder.classroom.batch import _notebooks

    base = os.path.join(root, "submitted")
    found = {}
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return found
    for student in names:
        folder = os.path.join(base, student, assignment)
        if not student.startswith(".") and os.path.isdir(folder):
            notebooks = _notebooks(folder)
            if notebooks:
                found[student] = notebooks
    return found


def _read_ledger(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _nbgrader_app(root, cache_dir, limits):
    """(config, CourseDirectory) from the course's nbgrader_config.py, with SandboxGrade reading the cache."""
    from nbgrader.apps.nbgraderapp import NbGraderApp
    from nbgrader.coursedir import CourseDirectory

    loader = NbGraderApp()
    loader.config_file_paths[:] = [root]
    loader.load_config_file()
    config = loader.config
    config.SandboxGrade.results_dir = cache_dir
    if (limits or {}).get("isolation"):
        config.SandboxGrade.isolation = limits["isolation"]
    config.CourseDirectory.root = root
    return config, CourseDirectory(config=config)


def _graded_in_gradebook(coursedir, assignment, students):
    """Students whose submission of ``assignment`` has every auto-graded cell scored in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    present = set()
    try:
        with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
            for student in students:
                try:
                    submission = gradebook.find_submission(assignment, student)
                except MissingEntry:
                    continue
                grades = [g for nb in submission.notebooks for g in nb.grades if g.auto_score is not None
                          or g.needs_manual_grade]
                if grades:
                    present.add(student)
    except Exception:  # noqa: BLE001 - no gradebook yet: nobody is in it
        return set()
    return present


def _nbgrader_autograde(config, coursedir, assignment, student):
    """Run nbgrader's Autograde for one student here; returns None or the reason it failed."""
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log, temp_attrs

    with temp_attrs(coursedir, assignment_id=assignment, student_id=student):
        app = Autograde(coursedir=coursedir, config=config)
        app.force = True
        app.create_student = True
        result = capture_log(app)
    if result.get("success"):
        return None
    text = (result.get("log") or "") + "\n" + (result.get("error") or "")
    for line in text.splitlines():
        if "SandboxGradeError:" in line:
            return line.split("SandboxGradeError:", 1)[1].strip()[:500]
    pattern = re.compile(r"^\s*([A-Za-z_.]*(Error|Exception)): (.*)$")
    causes = [m.group(0).strip() for m in map(pattern.match, text.splitlines())
              if m and "NbGraderException" not in m.group(1)]
    return (causes[-1] if causes else "see nbgrader's log (nbgrader autograde --student ...)")[:500]


def autograde(assignment, students=None, jobs=None, force=False, scheduler=None, limits=None, root="."):
    """Grade the class's submissions of ``assignment`` into nbgrader's gradebook; returns the exit status."""
    root = os.path.abspath(root)
    if not os.path.exists(os.path.join(root, "nbgrader_config.py")):
        print(f"error: no nbgrader_config.py in {root}: run this in the course folder.", file=sys.stderr)
        return 2
    found = _submissions(root, assignment)
    if students:
        missing = [s for s in students if s not in found]
        for student in missing:
            print(f"warning: no submission of {assignment} for student {student!r}", file=sys.stderr)
        found = {s: found[s] for s in students if s in found}
    if not found:
        print(f"error: no submissions found: looked for {os.path.join(root, 'submitted')}/<student>/{assignment}/"
              f"*.ipynb", file=sys.stderr)
        return 2
    state = os.path.join(root, STATE, assignment)
    cache = ResultsCache(os.path.join(state, "results"))
    ledger_path = os.path.join(state, "gradebook.json")
    remove_stale_temporaries(state)
    ledger = _read_ledger(ledger_path)
    summary = Summary(assignment)
    several = any(len(notebooks) > 1 for notebooks in found.values())
    keys = {}
    todo = []
    for student, notebooks in found.items():
        keys[student] = {}
        for path in notebooks:
            label = f"{student}/{os.path.basename(path)}" if several else student
            data, reason = read_submission(path)
            if data is None:
                summary.failed[label] = reason
                continue
            key = content_key(data, assignment)
            keys[student][os.path.basename(path)] = key
            report = None if force else cache.get(key)
            if report is not None:
                summary.graded[label] = report
            else:
                todo.append(Job((student, path), label, data, os.path.basename(path), key=key))
    writer = GradebookWriter(root, assignment, cache.folder, limits, ledger, ledger_path, keys, summary, force)
    remaining = {student: 0 for student in found}
    for job in todo:
        remaining[job.id[0]] += 1
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader")       # SQLAlchemy chatter of nbgrader's gradebook
        for outcome in run_gradings(todo, assignment, jobs, scheduler, limits, desc=f"grading {assignment}"):
            student, label, report = outcome.job.id[0], outcome.job.label, outcome.report
            summary.seconds[label] = report.execution_time
            if report.error:
                summary.failed[label] = report.error
            else:
                cache.put(outcome.job.key, report)
                summary.graded[label] = report
                summary.fresh.add(label)
            remaining[student] -= 1
            if remaining[student] == 0:
                writer.record(student)      # while the other gradings go on
        writer.record_all([s for s in sorted(found) if s not in writer.done])
    for line in summary.lines():
        print(line)
    return summary.exit_status()


class GradebookWriter:
    """nbgrader writes the gradebook for each student whose grades are not in it yet (or changed)."""

    def __init__(self, root, assignment, cache_dir, limits, ledger, ledger_path, keys, summary, force):
        self.root, self.assignment, self.cache_dir, self.limits = root, assignment, cache_dir, limits
        self.ledger, self.ledger_path, self.keys = ledger, ledger_path, keys
        self.summary, self.force = summary, force
        self.done = set()
        self._app = None

    def _setup(self):
        """Load nbgrader and the course's configuration once, when first needed (the gradings run meanwhile)."""
        if self._app is None:
            config, coursedir = _nbgrader_app(self.root, self.cache_dir, self.limits)
            self._app = config, coursedir, _graded_in_gradebook(coursedir, self.assignment, list(self.keys))
        return self._app

    def _cached(self):
        try:
            return set(os.listdir(self.cache_dir))
        except OSError:
            return set()

    def _failed(self, student):
        return any(label == student or label.startswith(student + "/") for label in self.summary.failed)

    def _needed(self, student):
        autograded = os.path.join(self.root, "autograded", student, self.assignment)
        if self.force or self.ledger.get(student) != self.keys[student] or not os.path.isdir(autograded):
            return True
        return student not in self._setup()[2]

    def record(self, student):
        """Let nbgrader grade ``student`` from the cache into the gradebook, if needed; then note it."""
        self.done.add(student)
        if self._failed(student) or not self._needed(student):
            return False
        before = self._cached()
        config, coursedir, _ = self._setup()
        reason = _nbgrader_autograde(config, coursedir, self.assignment, student)
        if self._cached() - before:
            # nbgrader's sanitising changed the code (e.g. restored an edited read-only cell): graded again.
            self.summary.regraded.add(student)
        if reason is None:
            self.ledger[student] = self.keys[student]
            write_json_atomic(self.ledger_path, self.ledger)
            return True
        self.summary.failed[student] = f"nbgrader could not record the grades: {reason}"
        for label in [lb for lb in self.summary.graded if lb == student or lb.startswith(student + "/")]:
            self.summary.graded.pop(label)
            self.summary.fresh.discard(label)
        return False

    def record_all(self, students):
        """``record`` each of ``students`` that needs it, with a progress bar."""
        from autograder.classroom.gradings import _progress

        todo = [s for s in students if not self._failed(s) and self._needed(s)]
        self.done.update(students)
        if not todo:
            return
        bar = _progress(len(todo), "gradebook")
        try:
            for student in todo:
                self.record(student)
                bar.update(1)
        finally:
            bar.close()
