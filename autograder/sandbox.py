"""The judge's handle on a student's code: ``student.probe``, ``student.call``, ``student.has``.

``SandboxStudent`` runs the notebook in a separate, locked-down process (``autograder.worker``) with a
wall-time limit per request and a memory limit; a request that hangs or crashes costs only the grader
that made it: the process is restarted for the next one. ``InProcessStudent`` serves the same requests
against a live namespace (the nbgrader kernel), so graders behave the same under nbgrader.
Failures reach graders as ``GradingFailure`` subclasses whose messages are meant for the student.
"""
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from autograder.channel import ChannelClosed, ChannelTimeout, recv_frame, send_frame


class StudentCodeFailure(AssertionError):
    """Base of failures caused by the student's code (a GradingFailure: see autograder.checks)."""


def _failure_base():
    from autograder.checks import GradingFailure
    return GradingFailure


@dataclass
class Limits:
    """Resource limits of the student's process."""

    call_timeout: float = 60.0        # seconds per request unless the grader says otherwise
    cell_timeout: float = 60.0        # seconds per notebook cell while the notebook runs
    startup_timeout: float = 300.0    # seconds for the whole notebook
    memory_bytes: int = 4 * 2**30     # address space beyond what torch itself maps
    file_bytes: int = 512 * 2**20     # largest file the student's code may write
    drop_user: bool = True            # as root: run as 'nobody' without network
    threads: int = 1                  # torch threads: predictable on shared 2-core graders
    max_restarts: int = 4


def student_error(response, label):
    """Turn an error response into a GradingFailure with a student-facing message."""
    base = _failure_base()
    kind = response.get("kind")
    if kind == "missing":
        what = response.get("what", "function")
        return base(f"`{response['name']}` is not defined in your notebook: define the {what} "
                    f"`{response['name']}` (with exactly this name) and run its cell.")
    where = f" ({response['where']})" if response.get("where") else ""
    if kind == "notimplemented":
        return base(f"{label} is not implemented yet: it raises NotImplementedError{where}. "
                    f"Replace `raise NotImplementedError()` with your code.")
    if kind == "student":
        return base(f"{label} raised {response.get('type')}: {response.get('message')}{where}.")
    if kind == "encode":
        return base(f"{label} returned something that could not be checked: {response.get('message')}.")
    return base(f"{label} could not be checked: {response.get('type')}: {response.get('message')}.")


class Student:
    """Common interface of the sandboxed and in-process students."""

    def probe(self, fn, *args, timeout=None, label=None, **kwargs):
        """Run the probe ``fn(ns, *args, **kwargs)`` next to the student's code and return its data."""
        source = inspect.getsource(fn)
        request = {"op": "probe", "source": _dedent(source), "name": fn.__name__,
                   "args": list(args), "kwargs": kwargs}
        return self._request(request, timeout, label or "your code")

    def call(self, name, *args, timeout=None, **kwargs):
        """Call the student's function ``name`` with data arguments and return its result as data."""
        return self.probe(_call_probe, name, list(args), kwargs, timeout=timeout, label=f"`{name}`")

    def has(self, name):
        """Whether the notebook defines ``name``."""
        return self._request({"op": "has", "name": name}, None, "your notebook")

    def _request(self, request, timeout, label):
        raise NotImplementedError

    def close(self):
        pass


def _dedent(source):
    import textwrap
    return textwrap.dedent(source)


def _call_probe(ns, name, args, kwargs):
    return ns.require(name)(*args, **kwargs)


# ------------------------------------------------------------------------------- in-process student
class InProcessStudent(Student):
    """Serves requests against a live namespace (used inside the nbgrader kernel)."""

    def __init__(self, namespace):
        self.namespace = namespace

    def _request(self, request, timeout, label):
        from autograder import codec
        from autograder.worker import handle

        request = codec.decode(codec.encode(request))
        response = handle(self.namespace, request)
        try:
            response = codec.decode(codec.encode(response))
        except codec.CodecError as exc:
            response = {"ok": False, "kind": "encode", "message": str(exc)}
        if not response.get("ok"):
            raise student_error(response, label)
        return response["value"]


# ---------------------------------------------------------------------------------- sandboxed student
@dataclass
class StartupReport:
    """What happened while the notebook ran in the student's process."""

    cell_errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    skipped_cells: list = field(default_factory=list)   # cells left out because they killed or hung the process
    seconds: float = 0.0


class SandboxStudent(Student):
    """Runs the notebook's cells in a locked-down child process and forwards probes to it."""

    def __init__(self, cells, limits=None):
        self.cells = list(cells)          # [(cell number, source)]
        self.limits = limits or Limits()
        self.proc = None
        self.workdir = None
        self.log_path = None
        self.ready = False
        self.startup = None
        self.restarts = 0
        self.skipped = []
        self.last_cell = None
        self.failure = None               # set when the process cannot be (re)started at all

    # -- process management
    def start(self):
        """Spawn the child and send it the notebook (does not wait for it)."""
        if self.proc is not None:
            return
        self.workdir = tempfile.mkdtemp(prefix="grading-")
        if os.geteuid() == 0 and self.limits.drop_user:
            os.chown(self.workdir, 65534, 65534)
            os.chmod(self.workdir, 0o700)
        self.log_path = os.path.join(tempfile.gettempdir(), os.path.basename(self.workdir) + ".log")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.workdir,
            "TMPDIR": self.workdir,
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": os.path.join(self.workdir, ".matplotlib"),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            "COURSE_GRADING": "1",
            "COURSE_QUICK": "1",
            "TQDM_DISABLE": "1",
            "OMP_NUM_THREADS": str(self.limits.threads),
            "MKL_NUM_THREADS": str(self.limits.threads),
        }
        for key in ("LANG", "LC_ALL", "COURSE_DATA_DIR"):
            if key in os.environ:
                env[key] = os.environ[key]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.workdir, env=env, start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.to_child, self.from_child = to_child_w, from_child_r
        cells = [c for c in self.cells if c[0] not in self.skipped]
        start = {"cells": cells, "cell_timeout": self.limits.cell_timeout,
                 "memory_bytes": self.limits.memory_bytes, "file_bytes": self.limits.file_bytes,
                 "drop_user": self.limits.drop_user, "threads": self.limits.threads}
        send_frame(self.to_child, json.dumps(start).encode())
        self.ready = False

    def _wait_ready(self):
        from autograder import codec
        deadline = time.monotonic() + self.limits.startup_timeout
        while True:
            try:
                message = codec.decode(recv_frame(self.from_child, max(0.0, deadline - time.monotonic())))
            except (ChannelTimeout, ChannelClosed, codec.CodecError) as exc:
                return self._startup_failed(exc)
            if message.get("event") == "cell":
                self.last_cell = message.get("index")
            elif message.get("event") == "ready":
                self.ready = True
                if self.startup is None:
                    self.startup = StartupReport(message.get("cell_errors", []), message.get("notes", []),
                                                 list(self.skipped), message.get("seconds", 0.0))
                else:
                    self.startup.skipped_cells = list(self.skipped)
                return

    def _startup_failed(self, exc):
        hung = isinstance(exc, ChannelTimeout)
        self._kill()
        if self.last_cell is not None and self.last_cell not in self.skipped and len(self.skipped) < 3:
            # The notebook itself killed or hung the process in that cell: leave the cell out and retry.
            self.skipped.append(self.last_cell)
            self.last_cell = None
            self.start()
            return self._wait_ready()
        what = "did not finish in time" if hung else "stopped unexpectedly"
        self.failure = f"Your notebook's code {what} while it was being loaded{self._log_hint()}."
        raise _failure_base()(self.failure)

    def _ensure_ready(self):
        if self.failure:
            raise _failure_base()(self.failure)
        if self.proc is None:
            if self.restarts >= self.limits.max_restarts:
                self.failure = ("Your code stopped or hung the grading process too many times; "
                                "the remaining checks could not run.")
                raise _failure_base()(self.failure)
            self.restarts += 1
            self.start()
        if not self.ready:
            self._wait_ready()

    def _log_hint(self):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, os.path.getsize(self.log_path) - 400))
                tail = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" (last output: {tail[-1][:200]})" if tail else ""

    def _kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.exit_status = self.proc.returncode
        self.proc = None
        self.ready = False

    def close(self):
        """Stop the child and remove its working folder."""
        if self.proc is not None and self.ready:
            try:
                from autograder import codec
                send_frame(self.to_child, codec.encode({"op": "exit"}))
                self.proc.wait(timeout=2)
            except Exception:  # noqa: BLE001 - it is killed below anyway
                pass
        self._kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)

    # -- requests
    def _request(self, request, timeout, label):
        from autograder import codec

        self._ensure_ready()
        timeout = self.limits.call_timeout if timeout is None else timeout
        try:
            send_frame(self.to_child, codec.encode(request))
            response = codec.decode(recv_frame(self.from_child, timeout))
        except ChannelTimeout:
            self._kill()
            raise _failure_base()(f"{label} did not finish within {timeout:g} s and was stopped "
                                  f"(an endless loop, or far too much work?).") from None
        except (ChannelClosed, BrokenPipeError, codec.CodecError):
            proc = self.proc
            self._kill()
            status = self.exit_status if proc is not None else None
            if status is not None and status < 0 and -status == signal.SIGKILL:
                why = " (killed: probably out of memory)"
            elif status is not None and status < 0:
                why = f" (killed by signal {signal.Signals(-status).name})"
            else:
                why = f" (exit status {status})" if status is not None else ""
            raise _failure_base()(f"The process running your code stopped while running {label}{why}.") \
                from None
        if not response.get("ok"):
            raise student_error(response, label)
        return response["value"]
