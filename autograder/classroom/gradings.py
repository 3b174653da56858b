"""Grading many submissions: content keys, a results cache, parallel or Dask gradings, and a summary.

The judge (this process) reads each submission, sends its bytes to a grading process (a local worker
process, or a Dask worker with ``--scheduler``), which copies them into a private folder and calls
``grade_notebook`` (the student's code runs only in that call's sandbox). Reports come back as plain
data; only the judge writes files, always atomically, so a kill -9 at any moment loses at most the
gradings in flight.
"""
import concurrent.futures
import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import stat
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from autograder.judge.report import Report, write_json_atomic

MAX_NOTEBOOK_BYTES = 64 * 2**20    # a larger file is not graded (a notebook of this course is < 1 MiB)
KEY_VERSION = 1


# ------------------------------------------------------------------------------------------ keys
def submission_key(nb, assignment):
    """sha256 (hex) of the assignment id and the code the student's process would run for ``nb``."""
    from autograder.judge.notebook import program_cells

    cells = [[number, source] for number, source in program_cells(nb)]
    text = json.dumps([KEY_VERSION, assignment, cells], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def content_key(data, assignment):
    """The key of a submitted file's bytes: ``submission_key`` when it is a notebook, else of the bytes."""
    from autograder.judge.notebook import NotebookError, check_notebook

    try:
        return submission_key(check_notebook(json.loads(data.decode("utf-8"))), assignment)
    except (UnicodeDecodeError, ValueError, NotebookError, TypeError, AttributeError, KeyError):
        digest = hashlib.sha256(data).hexdigest()
        return hashlib.sha256(f"{KEY_VERSION}:{assignment}:bytes:{digest}".encode()).hexdigest()


class ResultsCache:
    """Reports by submission key in a folder: ``<folder>/<key>.json``, written atomically."""

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)

    def path(self, key):
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a submission key: {key!r}")
        return os.path.join(self.folder, f"{key}.json")

    def get(self, key):
        """The cached Report of ``key``, or None (also when the entry is unreadable)."""
        try:
            with open(self.path(key), encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("key") != key:
                return None
            return Report.from_dict(data["report"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key, report):
        """Store ``report`` under ``key`` (only reports without a grading error are worth keeping)."""
        write_json_atomic(self.path(key), {"key": key, "report": report.to_dict()})


# --------------------------------------------------------------------------------- one grading
def grade_submission(data, assignment, limits=None, filename="submission.ipynb"):
    """Grade one notebook given as bytes; returns ``Report.to_dict()``. Runs in a grading process.

    The bytes are written to a private folder (mode 0700) first, so the grading never reads a file that
    anybody else can still change; the report names the file by ``filename`` alone.
    """
    from autograder.judge.engine import grade_notebook
    from autograder.sandbox.student import Limits

    started = time.monotonic()
    folder = tempfile.mkdtemp(prefix="submission-")
    name = os.path.basename(filename) or "submission.ipynb"
    path = os.path.join(folder, name)
    try:
        with open(path, "wb") as handle:
            handle.write(data)
        report = grade_notebook(path, assignment=assignment, limits=Limits(**(limits or {})))
        if report.error:
            report.error = report.error.replace(path, name).replace(folder, "")
    except Exception as exc:  # noqa: BLE001 - one submission must never stop the class
        report = Report(assignment=assignment,
                        error=f"Grading could not run: {type(exc).__name__}: {exc}".replace(folder, ""))
        report.execution_time = time.monotonic() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report.to_dict()


def warm_up(assignments, limits=None):
    """Start warm sandboxes of ``assignments`` in this grading process ahead of their first grading."""
    import importlib

    from autograder.sandbox import warm
    from autograder.sandbox.student import Limits

    importlib.import_module("autograder.judge.engine")       # what a grading imports, loaded now

    for assignment in assignments:
        box = warm.acquire(assignment, Limits(**(limits or {})))
        if box is not None:
            warm.release(box)
    return len(assignments)


def die_with_parent(judge):
    """Worker start-up: die when the judge dies (Linux), so a killed run leaves no grading behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != judge:          # the judge died before this worker was ready
        os._exit(0)


# ------------------------------------------------------------------------------------ many gradings
@dataclass
class Job:
    """One submission to grade: ``id`` is the judge's own handle, ``data`` the notebook's bytes."""

    id: object
    label: str
    data: bytes
    filename: str = "submission.ipynb"
    key: str = ""
    attempts: int = 0


@dataclass
class Outcome:
    """A finished grading as the judge sees it."""

    job: Job
    report: Report
    seconds: float = 0.0


def default_jobs():
    """One grading process per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_gradings(jobs, assignment, n_jobs=None, scheduler=None, limits=None, desc="grading"):
    """Grade ``jobs`` in parallel (local processes, or the Dask cluster at ``scheduler``); yield Outcomes.

    Outcomes come in completion order; every job yields exactly one, whatever happens to its grading.
    """
    jobs = list(jobs)
    if not jobs:
        return
    bar = _progress(len(jobs), desc)
    try:
        runner = _dask_gradings if scheduler else _local_gradings
        for outcome in runner(jobs, assignment, n_jobs, scheduler, limits):
            bar.update(1)
            yield outcome
    finally:
        bar.close()


def _progress(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="submission", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, smoothing=0.1)


def _outcome(job, data, started):
    try:
        report = Report.from_dict(data)
    except ValueError as exc:
        report = Report(error=f"Grading could not run: the grading process sent back {exc}.")
    return Outcome(job, report, time.monotonic() - started)


def _failed(job, reason, started):
    return Outcome(job, Report(error=f"Grading could not run: {reason}."), time.monotonic() - started)


def _local_gradings(jobs, assignment, n_jobs, scheduler, limits):
    """A pool of spawned processes; a pool broken by a dying process is replaced, its jobs retried once."""
    from concurrent.futures.process import BrokenProcessPool

    pending = list(jobs)
    n_jobs = max(1, min(n_jobs or default_jobs(), len(jobs)))
    context = multiprocessing.get_context("spawn")
    while pending:
        pool = concurrent.futures.ProcessPoolExecutor(n_jobs, mp_context=context, initializer=die_with_parent,
                                                      initargs=(os.getpid(),))
        started = {}
        futures = {}
        for job in pending:
            job.attempts += 1
            futures[pool.submit(grade_submission, job.data, assignment, limits, job.filename)] = job
            started[job.id] = time.monotonic()
        pending = []
        broken = False
        try:
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                try:
                    yield _outcome(job, future.result(), started[job.id])
                except BrokenProcessPool:
                    broken = True
                    if job.attempts < 2:
                        pending.append(job)
                    else:
                        yield _failed(job, "the grading process stopped unexpectedly twice", started[job.id])
                except Exception as exc:  # noqa: BLE001
                    yield _failed(job, f"{type(exc).__name__}: {exc}", started[job.id])
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)


def _dask_gradings(jobs, assignment, n_jobs, scheduler, limits):
    """The same gradings on a Dask distributed cluster; results come back to the judge as data."""
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="60s")
    except (OSError, TimeoutError) as exc:
        raise SystemExit(f"error: cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        futures = {}
        started = {}
        for job in jobs:
            job.attempts += 1
            future = client.submit(grade_submission, job.data, assignment, limits, job.filename, pure=False,
                                   retries=1)        # a worker lost mid-grading: graded again elsewhere
            futures[future] = job
            started[job.id] = time.monotonic()
        for future in as_completed(list(futures)):
            job = futures[future]
            try:
                yield _outcome(job, future.result(), started[job.id])
            except Exception as exc:  # noqa: BLE001 - a lost worker costs that grading only
                yield _failed(job, f"the cluster could not grade it ({type(exc).__name__}: {exc})",
                              started[job.id])
            finally:
                future.release()


# -------------------------------------------------------------------------------------- summary
@dataclass
class Summary:
    """What a class grading did, for the final printout."""

    assignment: str
    graded: dict = field(default_factory=dict)        # label -> Report (graded now or before)
    fresh: set = field(default_factory=set)           # labels graded in this run
    failed: dict = field(default_factory=dict)        # label -> reason
    seconds: dict = field(default_factory=dict)       # label -> grading seconds (this run)
    regraded: set = field(default_factory=set)        # graded again by nbgrader: its sanitising changed the code

    def exit_status(self):
        """2 when no submission of the class has grades (from this run or an earlier one) and some failed, else 0:
        a file that stays broken while the rest are graded is its student's to fix."""
        return 0 if self.graded or not self.failed else 2

    def lines(self, slowest=5):
        """The summary as printable lines."""
        from autograder.judge.tasks import load_assignment

        out = [f"Graded: {len(self.graded)} submission(s) ({len(self.fresh)} in this run, "
               f"{len(self.graded) - len(self.fresh)} unchanged since an earlier run)."]
        if self.failed:
            out.append(f"Failed to grade: {len(self.failed)}")
            for label, reason in sorted(self.failed.items()):
                out.append(f"  {label}: {reason}")
        else:
            out.append("Failed to grade: 0")
        if self.regraded:
            out.append(f"Graded again while nbgrader recorded them ({len(self.regraded)}: nbgrader restored "
                       f"read-only cells they had edited): {', '.join(sorted(self.regraded))}")
        reports = [r for r in self.graded.values() if not r.error]
        if reports:
            try:
                order = [t.id for t in load_assignment(self.assignment).tasks]
            except Exception:  # noqa: BLE001 - the summary must print anyway
                order = []
            ids = order + sorted({t.id for r in reports for t in r.tasks} - set(order))
            out.append("Mean score per task:")
            width = max(len(i) for i in ids)
            for task_id in ids:
                scores = [(r.by_task[task_id].score, r.by_task[task_id].max_score) for r in reports
                          if task_id in r.by_task]
                if scores:
                    mean = statistics.fmean(s for s, _ in scores)
                    out.append(f"  {task_id:<{width}}  {mean:6.2f} / {scores[0][1]:g}")
            out.append(f"  {'total':<{width}}  {statistics.fmean(r.score for r in reports):6.2f} / "
                       f"{reports[0].max_score:g}")
        if self.seconds:
            top = sorted(self.seconds.items(), key=lambda item: -item[1])[:slowest]
            out.append("Slowest submissions: " + ", ".join(f"{label} {s:.1f} s" for label, s in top))
        return out


def remove_stale_temporaries(folder):
    """Delete temporary files a killed run left behind under ``folder`` (never a finished file)."""
    for parent, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".tmp-") or name.startswith(".grades.csv.tmp-"):
                try:
                    os.unlink(os.path.join(parent, name))
                except OSError:
                    pass


SYMLINK_REFUSED = ("the submission is a symbolic link, not a notebook file: submit the notebook itself "
                   "(a link could point at another student's work or at a file of the grading machine)")


def read_submission(path):
    """The bytes of a submitted file, or (None, reason) when it cannot be graded at all.

    Opened without following symbolic links (the file, and the student's folder holding it)."""
    try:
        if os.path.islink(path) or os.path.islink(os.path.dirname(path)):
            return None, SYMLINK_REFUSED
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, "the submission is not a regular file"
            if info.st_size > MAX_NOTEBOOK_BYTES:
                return None, f"the file is {info.st_size / 2**20:.0f} MiB, more than a notebook of this course can be"
            return handle.read(MAX_NOTEBOOK_BYTES + 1), None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, SYMLINK_REFUSED
        return None, f"the file cannot be read ({exc.strerror})"
