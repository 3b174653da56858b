"""The judge's handle on a student's code: ``student.probe``, ``student.call``, ``student.has``.

``SandboxStudent`` runs the notebook in a separate process inside the sandbox of ``autograder.sandbox.isolation``
(bubblewrap, else an unprivileged user), with time limits enforced from this side by killing, a memory
limit, a process limit and a bounded record of what it prints. A request that hangs or crashes costs only
the grader that made it: the process is restarted for the next one. Everything the student's process sends
is checked here (frame size, nonce, fields, types) before any grader sees it; anything malformed costs
only the request it answers. ``InProcessStudent`` serves the same requests against a live namespace (the
nbgrader kernel of an instructor's own validation), so graders behave the same there.
Failures reach graders as ``StudentFailure``s whose messages are meant for the student.
"""
import inspect
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from autograder.sandbox.child import Output, base_env, text
from autograder.sandbox.inside.channel import ChannelClosed, ChannelTimeout, FrameTooLarge, recv_frame, send_frame

MAX_RESPONSE_BYTES = 256 * 2**20       # one probe's answer
MAX_EVENT_BYTES = 1 * 2**20            # a start-up event
KINDS = {"missing", "library", "notimplemented", "student", "encode", "probe"}


class StudentFailure(AssertionError):
    """What the student's code caused (an error, a time-out, interference): the message is for the student.
    The judge's own failed checks (``autograder.judge.checks.GradingFailure``) are a kind of it."""


@dataclass
class Limits:
    """Resource limits of the student's process."""

    call_timeout: float = 60.0        # seconds per request unless the grader says otherwise
    cell_timeout: float = 60.0        # seconds per notebook cell while the notebook runs
    startup_timeout: float = 300.0    # seconds for the whole notebook
    memory_bytes: int = 4 * 2**30     # address space beyond what torch itself maps
    runtime_bytes: int = 2 * 2**30    # resident memory of the runtime itself, on top (memory cgroup)
    file_bytes: int = 512 * 2**20     # largest file the student's code may write
    disk_bytes: int = 1 * 2**30       # all files it may write (its private tmpfs)
    max_processes: int = 64           # processes and threads at once
    output_bytes: int = 64 * 2**10    # what it prints: only the last this many bytes are kept
    isolation: str = "auto"           # "auto", "bwrap", "user", or "none" (only with --unsafe-no-sandbox)
    threads: int = 1                  # torch threads: predictable on shared 2-core graders
    max_restarts: int = 4
    cpus: float = 1.0                 # CPU time per second the box may use (cgroup quota), and an equal share
    grading_budget: float = 300.0     # seconds for all the checks of one grading, after the notebook has loaded
    warm: bool = True                 # bwrap tier: fork each grading from a warm sandbox (autograder.sandbox.warm)
    drop_user: bool = True            # kept for callers of older versions; isolation decides


def student_error(response, label):
    """Turn an error response into a StudentFailure with a student-facing message."""
    base = StudentFailure
    kind = response.get("kind")
    name = text(response.get("name"), 80)
    if kind == "missing":
        what = text(response.get("what"), 20) or "function"
        return base(f"`{name}` is not defined in your notebook: define the {what} "
                    f"`{name}` (with exactly this name) and run its cell.")
    if kind == "library":
        return base(f"`{name}` comes from the course library ({text(response.get('module'), 60)}), not from your "
                    f"notebook: this task asks you to write it yourself.")
    where = f" ({text(response.get('where'), 120)})" if response.get("where") else ""
    if kind == "notimplemented":
        return base(f"{label} is not implemented yet: it raises NotImplementedError{where}. "
                    f"Replace `raise NotImplementedError(...)` with your code.")
    kind_type, message = text(response.get("type"), 60), text(response.get("message"))
    if kind == "student":
        return base(f"{label} raised {kind_type}: {message}{where}.")
    if kind == "encode":
        return base(f"{label} returned something that could not be checked: {message}.")
    return base(f"{label} could not be checked: {kind_type}: {message}.")


def probe_key(fn_name, args):
    """The name a probe's time and budget are kept under: the probe's name; ``call:<function>`` for a plain call."""
    return f"call:{args[0]}" if fn_name == "_call_probe" and args else fn_name


class Student:
    """Common interface of the sandboxed and in-process students."""

    budgets = {}        # probe key -> seconds it may run (the judge's autograder.judge.budgets); else call_timeout

    def probe(self, fn, *args, timeout=None, label=None, **kwargs):
        """Run the probe ``fn(ns, *args, **kwargs)`` next to the student's code and return its data; its time is
        kept in ``timings`` as (probe key, seconds)."""
        source = inspect.getsource(fn)
        request = {"op": "probe", "source": _dedent(source), "name": fn.__name__,
                   "args": list(args), "kwargs": kwargs}
        key = probe_key(fn.__name__, args)
        started = time.monotonic()
        try:
            return self._request(request, self.budgets.get(key) if timeout is None else timeout,
                                 label or "your code")
        finally:
            self.__dict__.setdefault("timings", []).append((key, time.monotonic() - started))

    def call(self, name, *args, timeout=None, **kwargs):
        """Call the student's function ``name`` with data arguments and return its result as data."""
        return self.probe(_call_probe, name, list(args), kwargs, timeout=timeout, label=f"`{name}`")

    def has(self, name):
        """Whether the notebook defines ``name``."""
        return self._request({"op": "has", "name": name}, None, "your notebook") is True

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
    """Serves requests against a live namespace (an instructor's kernel: no isolation)."""

    def __init__(self, namespace, hidden_modules=()):
        self.namespace = namespace
        self.hidden_modules = tuple(hidden_modules)

    def _request(self, request, timeout, label):
        from autograder.sandbox.inside import codec
        from autograder.sandbox.inside.worker import handle

        request = codec.decode(codec.encode(request))
        response = handle(self.namespace, request, hidden_modules=self.hidden_modules)
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
    """What happened while the notebook ran in the student's process (checked, bounded fields)."""

    cell_errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    skipped_cells: list = field(default_factory=list)   # cells left out because they killed or hung the process
    seconds: float = 0.0
    used: list = field(default_factory=list)            # interpreter features the notebook used (Guard)


USED_FEATURES = {"ctypes", "sys.setprofile", "sys.settrace", "sys.addaudithook"}


def _used(value):
    """The features the student's process says its notebook used, checked against the known names."""
    return sorted({v for v in value if v in USED_FEATURES}) if isinstance(value, list) else []


class ProtocolViolation(Exception):
    """The student's process sent something the protocol does not allow."""


class SandboxFault(RuntimeError):
    """The sandbox died before any of the student's code ran: a fault of the grading machine."""


class SandboxStudent(Student):
    """Runs the notebook's cells in a sandboxed child process and forwards probes to it."""

    def __init__(self, cells, limits=None, assignment=None):
        self.cells = list(cells)          # [(cell number, source)]
        self.limits = limits or Limits()
        self.assignment = assignment
        self.box = None
        self.warm = None                  # the warm box this grading forks from (autograder.sandbox.warm)
        self.proc = None
        self.output = None
        self.ready = False
        self.startup = None
        self.restarts = 0
        self.hung = {}                    # `name` -> its message: a function that did not finish is not called again
        self.skipped = []
        self.last_cell = None
        self.failure = None               # set when the process cannot be (re)started at all
        self.startup_nonce = None
        self.exit_status = None
        self.cells_started = False
        self.budget_armed = False         # grade_notebook: the checks of one grading share one time budget
        self.budget_until = None          # monotonic time after which no further check starts

    @property
    def machine_fault(self):
        """The failure, when the sandbox died before any of the notebook's code ran (else None)."""
        return self.failure if self.failure and not self.cells_started and not self.skipped else None

    @property
    def seccomp(self):
        """Whether the student's process loads the seccomp filter (every tier but none, where libseccomp is)."""
        from autograder.sandbox.inside import syscalls
        return self.box is not None and self.box.tier != "none" and syscalls.available()

    @property
    def protections(self):
        lines = self.box.protections(self.limits) if self.box is not None else []
        if self.seccomp:
            lines.append("system calls: a seccomp filter denies ptrace, keyrings, new namespaces, mounts, io_uring, "
                         "userfaultfd, bpf, perf events and the rest of Docker's default list")
        if self.warm is not None:
            lines.append("start: forked from a sandbox with torch loaded into new mount, pid, ipc, network and "
                         "uts namespaces with empty scratch folders; capabilities dropped first")
        return lines

    # -- process management
    def open_box(self):
        """Choose the isolation and stage the library (raises IsolationUnavailable if none is possible)."""
        if self.box is None:
            from autograder.sandbox.isolation import Box, choose_tier
            from autograder.sandbox.library import hidden_modules

            tier = choose_tier(self.limits.isolation)
            self.hidden = sorted(hidden_modules(self.assignment)) if self.assignment else []
            if tier == "bwrap" and self.limits.warm:
                from autograder.sandbox import warm

                self.warm = warm.acquire(self.assignment, self.limits)
            if self.warm is not None:
                self.box = self.warm.box
            else:
                self.box = Box(tier, self.assignment, self.limits)
        return self.box

    def _spawn(self, to_child_r, from_child_w):
        """The student's process on these pipes: forked from the warm box, else a fresh sandbox."""
        if self.warm is not None:
            from autograder.sandbox.warm import WarmBoxError

            try:
                return self.warm.spawn(to_child_r, from_child_w)
            except WarmBoxError:
                self.warm.close()                  # gone: this grading goes on with fresh sandboxes
                self.warm = None
                from autograder.sandbox.isolation import Box
                self.box = Box(self.box.tier, self.assignment, self.limits)
        box = self.box
        argv = box.command([sys.executable, "-s", "-B", "-P", "-c",
                            "from autograder.sandbox.inside.worker import main; main()", str(to_child_r), str(from_child_w)])
        return subprocess.Popen(
            argv, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=box.folder if box.tier == "bwrap" else box.workdir,
            env=box.env(base_env(self.limits)), start_new_session=True, preexec_fn=box.preexec)

    def start(self):
        """Spawn the child and send it the notebook (does not wait for it)."""
        if self.proc is not None:
            return
        self.open_box()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.proc = self._spawn(to_child_r, from_child_w)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        box = self.box                          # a fresh one if the warm box was gone
        self.output = Output(self.proc.stdout, self.limits.output_bytes)
        self.to_child, self.from_child = to_child_w, from_child_r
        self.startup_nonce = secrets.token_hex(16)
        cells = [c for c in self.cells if c[0] not in self.skipped]
        start = {"cells": cells, "cell_timeout": self.limits.cell_timeout,
                 "memory_bytes": self.limits.memory_bytes, "file_bytes": self.limits.file_bytes,
                 "max_processes": self.limits.max_processes if box.uid is not None else None,
                 "threads": self.limits.threads, "hidden_modules": self.hidden, "nonce": self.startup_nonce,
                 "seccomp": self.seccomp, "landlock": box.landlock_rules()}
        try:
            send_frame(self.to_child, json.dumps(start).encode())
        except OSError:
            pass                        # it died at once: noticed when its first event is awaited
        self.ready = False

    def _recv(self, deadline, limit):
        from autograder.sandbox.inside import codec
        data = recv_frame(self.from_child, max(0.0, deadline - time.monotonic()), max_size=limit)
        return codec.decode(data)

    def start_budget(self):
        """From when the notebook has loaded, all checks together get ``limits.grading_budget`` seconds."""
        self.budget_armed = True

    def _wait_ready(self):
        from autograder.sandbox.inside import codec
        overall = time.monotonic() + self.limits.startup_timeout
        known = {index for index, _ in self.cells}
        while True:
            # The judge enforces the cell time limit itself: a cell that ignores its alarm is killed.
            deadline = min(overall, time.monotonic() + self.limits.cell_timeout + 5.0)
            try:
                message = self._recv(deadline, MAX_EVENT_BYTES)
                if not isinstance(message, dict) or message.get("nonce") != self.startup_nonce:
                    raise ProtocolViolation()
            except (ChannelTimeout, ChannelClosed, FrameTooLarge, codec.CodecError, ProtocolViolation,
                    OSError) as exc:
                return self._startup_failed(exc)
            event = message.get("event")
            if event == "cell" and message.get("index") in known:
                self.last_cell = message["index"]
                self.cells_started = True
            elif event == "ready":
                self.ready = True
                if self.startup is None:
                    self.startup = StartupReport(_cell_errors(message.get("cell_errors"), known), [],
                                                 list(self.skipped), _number(message.get("seconds")),
                                                 _used(message.get("used")))
                else:
                    self.startup.skipped_cells = list(self.skipped)
                return
            else:
                return self._startup_failed(ProtocolViolation())

    def _startup_failed(self, exc):
        hung = isinstance(exc, ChannelTimeout)
        self._kill()
        if self.last_cell is None and not self.skipped and not self.cells_started:
            # Nothing of the notebook ran yet: the runtime itself could not start in the sandbox.
            self.failure = (f"the sandbox stopped before the notebook's first cell ran "
                            f"({'no answer in time' if hung else 'it exited'}){self._log_hint()}")
            raise SandboxFault(self.failure)
        if self.last_cell is not None and self.last_cell not in self.skipped and len(self.skipped) < 3:
            # The notebook itself killed or hung the process in that cell: leave the cell out and retry.
            self.skipped.append(self.last_cell)
            self.last_cell = None
            self.start()
            return self._wait_ready()
        what = "did not finish in time" if hung else "stopped unexpectedly"
        self.failure = f"Your notebook's code {what} while it was being loaded{self._log_hint()}."
        raise StudentFailure(self.failure)

    def _ensure_ready(self):
        if self.failure:
            raise (SandboxFault if self.machine_fault else StudentFailure)(self.failure)
        if self.proc is None:
            if self.restarts >= self.limits.max_restarts:
                self.failure = ("Your code stopped or hung the grading process too many times; "
                                "the remaining checks could not run.")
                raise StudentFailure(self.failure)
            self.restarts += 1
            self.start()
        if not self.ready:
            self._wait_ready()

    def _log_hint(self):
        line = self.output.last_line() if self.output is not None else ""
        return f" (last output: {line})" if line else ""

    def _kill(self):
        if self.proc is None:
            return
        if hasattr(self.proc, "kill_all"):
            self.proc.kill_all()                  # a grading forked from the warm box
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.box is not None:
                self.box.kill_all()
        self.proc.wait()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.output is not None:
            self.output.thread.join(timeout=2)
        self.exit_status = self.proc.returncode
        self.proc = None
        self.ready = False

    def close(self):
        """Stop the child, kill everything it started and remove its files."""
        if self.proc is not None and self.ready:
            try:
                from autograder.sandbox.inside import codec
                send_frame(self.to_child, codec.encode({"op": "exit"}))
                self.proc.wait(timeout=2)
            except Exception:  # noqa: BLE001 - it is killed below anyway
                pass
        self._kill()
        if self.warm is not None:
            from autograder.sandbox import warm

            warm.release(self.warm)               # for the next grading: nothing of this one is left in it
            self.warm = None
        elif self.box is not None:
            self.box.close()

    # -- requests
    def _request(self, request, timeout, label):
        from autograder.sandbox.inside import codec

        if label in self.hung:
            raise StudentFailure(self.hung[label])        # it hung once: later checks of it fail at once
        self._ensure_ready()
        timeout = self.limits.call_timeout if timeout is None else timeout
        if self.budget_armed and self.budget_until is None:
            self.budget_until = time.monotonic() + self.limits.grading_budget
        if self.budget_until is not None:
            if self.ready and self.budget_until - time.monotonic() <= 0:
                raise StudentFailure(f"The checks of your notebook used up their time budget "
                                      f"({self.limits.grading_budget:g} s in all), so {label} was not checked: "
                                      f"look for code that is far too slow or never ends.")
            timeout = max(0.1, min(timeout, self.budget_until - time.monotonic()))
        nonce = secrets.token_hex(16)
        request = dict(request, nonce=nonce)
        deadline = time.monotonic() + timeout
        response = None
        try:
            send_frame(self.to_child, codec.encode(request))
            while True:
                message = self._recv(deadline, MAX_RESPONSE_BYTES)
                if not isinstance(message, dict) or message.get("nonce") != nonce:
                    raise ProtocolViolation()
                if message.get("event") == "done":
                    status = message.get("status")
                    break
                if response is not None or not isinstance(message.get("ok"), bool):
                    raise ProtocolViolation()
                response = message
        except ChannelTimeout:
            self._kill()
            message = (f"{label} did not finish within {timeout:g} s and was stopped "
                       f"(an endless loop, or far too much work?).")
            if re.fullmatch(r"`\w+`", label):           # a label that names one function of the notebook
                self.hung[label] = message
            raise StudentFailure(message) from None
        except (ProtocolViolation, FrameTooLarge, codec.CodecError):
            self._kill()
            raise StudentFailure(f"While {label} ran, your code interfered with the grading process (it sent "
                                  f"data on the channel the grader uses, or something far too large); "
                                  f"nothing it sent was used.") from None
        except (ChannelClosed, OSError):
            self._kill()
            raise StudentFailure(f"The process running your code stopped while running {label}"
                                  f"{_why(self.exit_status)}.") from None
        if response is None:
            raise StudentFailure(f"The process running your code stopped while running {label}"
                                  f"{_why(status if isinstance(status, int) else None, signed=True)}.")
        if not response["ok"]:
            kind = response.get("kind")
            raise student_error(response if kind in KINDS else {"kind": "probe", "type": "Error"}, label)
        return response.get("value")


def _why(status, signed=False):
    """Words for a process exit status (negative: killed by that signal)."""
    if status is None or isinstance(status, bool):
        return ""
    if status < 0 and -status == signal.SIGKILL:
        return " (killed: probably out of memory)"
    if status < 0:
        try:
            return f" (killed by signal {signal.Signals(-status).name})"
        except ValueError:
            return f" (killed by signal {-status})"
    return f" (exit status {status})"


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _cell_errors(value, known):
    """The notebook's cell errors as sent by the student's process, checked and bounded."""
    errors = []
    if not isinstance(value, list):
        return errors
    for item in value[:len(known)]:
        if not isinstance(item, dict) or item.get("index") not in known:
            continue
        line = item.get("line")
        errors.append({"index": item["index"], "type": text(item.get("type"), 40) or "Error",
                       "message": text(item.get("message")),
                       "line": line if isinstance(line, int) and not isinstance(line, bool) and 0 < line < 10**6
                       else None})
    return errors
