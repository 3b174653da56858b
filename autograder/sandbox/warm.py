"""Warm sandboxes: torch is loaded once per sandbox, and each grading forks from it into namespaces of its own.

Starting Python and importing torch costs seconds; a class pays it once per judge process and assignment.
A ``WarmBox`` is a bubblewrap sandbox (``autograder.sandbox.isolation.Box``, tier ``bwrap``) running the fork
server ``autograder.sandbox.inside.zygote`` with torch and the usual libraries imported. ``spawn`` hands it the pipes of
one grading; the grading process it forks gets fresh mount, PID, IPC, network and UTS namespaces with
empty private scratch folders and no capabilities (see ``autograder.sandbox.inside.zygote``), so one grading sees
nothing of another. The fork server itself never runs student code and cannot be seen from a grading.

Killing a grading: SIGKILL to its process outside the namespace (whose death kills the namespace's init,
hence every process in it), and every process in the box's cgroups that is not part of the box itself.
``acquire``/``release`` keep a few idle warm boxes per judge process, one per assignment and limits.
"""
import atexit
import collections
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

IDLE_BOXES = 3                # idle warm boxes kept per judge process (COURSE_WARM_BOXES to change it)
# The limits a warm box (always the bwrap tier) is made with: its cgroups, its tmpfs, its torch threads. The
# rest (time limits, output, restarts, the largest file) are one grading's, so gradings that differ only in
# those share warm boxes.
BOX_LIMITS = ("memory_bytes", "runtime_bytes", "disk_bytes", "max_processes", "cpus", "threads")
START_TIMEOUT = 300.0         # seconds for a warm box to load its libraries
CREDENTIALS = struct.calcsize("3i")


class WarmBoxError(RuntimeError):
    """The warm box could not start or serve a grading (the caller falls back to a cold start)."""


class WarmProcess:
    """One grading forked by a warm box: what ``SandboxStudent`` needs of a process."""

    def __init__(self, box, request_id, pid, pidfd, stdout):
        self.box = box
        self.id = request_id
        self.pid = pid
        self.pidfd = pidfd
        self.stdout = stdout
        self.returncode = None

    def kill_all(self):
        """SIGKILL the grading (its namespace goes with it) and anything of it left in the cgroups."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass
        self.box.kill_strays()

    def wait(self, timeout=None):
        """The grading's exit status as the fork server saw it (negative: killed by that signal)."""
        if self.returncode is None:
            status = self.box.wait_exit(self.id, 30.0 if timeout is None else timeout)
            if status is None:
                if timeout is not None:
                    raise subprocess.TimeoutExpired("grading", timeout)
                status = -signal.SIGKILL
            # the fork server reports 128 + N for a grading killed by signal N (negative: its own kill)
            self.returncode = -(status - 128) if status > 128 else status
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return self.returncode


class WarmBox:
    """A bubblewrap sandbox with torch loaded that forks one isolated grading process per request."""

    def __init__(self, assignment, limits):
        from autograder.sandbox.isolation import Box
        from autograder.sandbox.child import Output, base_env

        self.key = pool_key(assignment, limits)
        self.box = Box("bwrap", assignment, limits)
        self.ids = 0
        self.exits = {}
        self.proc = None
        try:
            judge, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            judge.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.sock = judge
            argv = self.box.command([sys.executable, "-s", "-B", "-P", "-c",
                                     "from autograder.sandbox.inside.zygote import main; main()", str(inside.fileno())],
                                    capabilities=True)
            self.proc = subprocess.Popen(
                argv, pass_fds=(inside.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, cwd=self.box.folder, env=self.box.env(base_env(limits)),
                start_new_session=True, preexec_fn=self.box.preexec)
            inside.close()
            self.output = Output(self.proc.stdout, 16 * 1024)
            judge.send(json.dumps({"disk_bytes": limits.disk_bytes, "threads": limits.threads}).encode())
            ready = self._recv(time.monotonic() + START_TIMEOUT)
            if not ready or ready[0].get("event") != "ready" or ready[0].get("ok") is not True:
                raise WarmBoxError(f"the warm sandbox could not start ({self.output.last_line() or 'no output'})")
            self.base = self._cgroup_pids() | self._box_pids()
        except BaseException:
            self.close()
            raise

    # -- the control socket
    def _recv(self, deadline):
        """One message from the box: (dict, sender pid as seen here), or None at end of file / time-out."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(CREDENTIALS))
            except OSError:
                return None
            if not data:
                return None
            pid = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(value) >= CREDENTIALS:
                    pid = struct.unpack("3i", value[:CREDENTIALS])[0]
            try:
                message = json.loads(data.decode())
            except ValueError:
                continue
            if isinstance(message, dict):
                if message.get("event") == "exit":
                    self.exits[message.get("id")] = message.get("status")
                return message, pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, to_child_r, from_child_w):
        """Fork a grading process on these pipes; returns its WarmProcess (raises WarmBoxError)."""
        self.ids += 1
        request_id = self.ids
        out_r, out_w = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps({"op": "fork", "id": request_id}).encode()],
                            [to_child_r, from_child_w, out_w])
        except OSError as exc:
            os.close(out_r)
            raise WarmBoxError(f"the warm sandbox is gone ({exc})") from None
        finally:
            os.close(out_w)
        deadline = time.monotonic() + 30.0
        while True:
            got = self._recv(deadline)
            if got is None:
                os.close(out_r)
                raise WarmBoxError("the warm sandbox did not fork a grading process")
            message, pid = got
            if message.get("event") == "started" and message.get("id") == request_id and pid:
                break
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None           # it already died: its exit is reported by the fork server
        return WarmProcess(self, request_id, pid, pidfd, os.fdopen(out_r, "rb", buffering=0))

    def wait_exit(self, request_id, timeout):
        """The exit status of grading ``request_id`` (None if it is not reported in ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while request_id not in self.exits:
            if self._recv(deadline) is None:
                return None
        return self.exits.pop(request_id)

    # -- processes
    def _cgroup_pids(self):
        return self.box.cgroups.pids() if self.box.cgroups is not None else set()

    def _box_pids(self):
        """bubblewrap, its init and the fork server (the processes that are not a grading's)."""
        found = {self.proc.pid}
        frontier = [self.proc.pid]
        for _ in range(2):
            frontier = [child for pid in frontier for child in _children(pid)]
            found.update(frontier)
        return found

    def kill_strays(self):
        """SIGKILL every process in the box's cgroups that is not bubblewrap or the fork server."""
        if self.box.cgroups is not None:
            self.box.cgroups.kill_all(keep=self.base)

    def close(self):
        """Stop the fork server and everything in the box."""
        if getattr(self, "sock", None) is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.box.kill_all()
            self.proc.wait()
        self.box.close()


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except (OSError, ValueError):
        return []


# ------------------------------------------------------------------------------------------- pool
def pool_key(assignment, limits):
    """Gradings of one assignment whose limits agree on ``BOX_LIMITS`` can use the same warm boxes."""
    return assignment, tuple(getattr(limits, name) for name in BOX_LIMITS)


def idle_boxes():
    """How many idle warm boxes a judge process keeps (one per assignment it grades is best: about 0.4 GB each)."""
    try:
        return max(0, int(os.environ.get("COURSE_WARM_BOXES", IDLE_BOXES)))
    except ValueError:
        return IDLE_BOXES


_idle = collections.OrderedDict()     # key -> [WarmBox]
_lock = threading.Lock()
_broken = set()                       # keys whose warm boxes could not start here: cold starts only


def acquire(assignment, limits):
    """A warm box for this assignment and limits (idle or new), or None where none can run here."""
    key = pool_key(assignment, limits)
    with _lock:
        if key in _broken:
            return None
        boxes = _idle.get(key, [])
        while boxes:
            box = boxes.pop()
            if box.alive():
                return box
            box.close()
    try:
        return WarmBox(assignment, limits)
    except Exception:  # noqa: BLE001 - e.g. mounts not allowed in the sandbox: grade with cold starts
        with _lock:
            _broken.add(key)
        return None


def release(box):
    """Give a warm box back for the next grading (closed instead when it is dead or too many are idle)."""
    if not box.alive():
        box.close()
        return
    with _lock:
        _idle.setdefault(box.key, []).append(box)
        _idle.move_to_end(box.key)
        extra = []
        while sum(len(b) for b in _idle.values()) > idle_boxes():
            oldest = next(iter(_idle))
            extra.append(_idle[oldest].pop(0))
            if not _idle[oldest]:
                del _idle[oldest]
    for old in extra:
        old.close()


def idle_processes():
    """Pids of the idle warm boxes' own processes (bubblewrap, its init, the fork servers)."""
    with _lock:
        return {pid for group in _idle.values() for box in group for pid in box.base}


@atexit.register
def close_all():
    """Close every idle warm box (at exit of the judge process)."""
    with _lock:
        boxes = [box for group in _idle.values() for box in group]
        _idle.clear()
    for box in boxes:
        box.close()
