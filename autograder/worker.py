"""The student's process: runs the notebook's code, then answers probes with plain data.

Started by ``autograder.sandbox`` as ``python -m autograder.worker READ_FD WRITE_FD``. It imports torch,
locks itself down (no network, an unprivileged user, memory / file-size / process limits), runs the
notebook's cells one by one (each with a time limit; errors are recorded and the next cell runs, as in
Jupyter), and then serves requests until told to exit. Everything it sends is encoded by
``autograder.codec``; the judging process decides every score.
"""
import ctypes
import hashlib
import json
import os
import signal
import sys
import time
import traceback

CELL_FILENAME = "<cell {}>"


class MissingName(LookupError):
    """A name the grader needs is not defined by the notebook."""

    def __init__(self, name, kind="function"):
        super().__init__(name)
        self.name = name
        self.kind = kind


class CellTimeout(BaseException):
    """A notebook cell ran past its time limit."""


class StudentNamespace:
    """What a probe sees of the notebook: ``ns.require(name)``, ``ns.get(name)``, ``name in ns``."""

    def __init__(self, namespace):
        self.globals = namespace

    def require(self, name, kind="function"):
        """The notebook's object called ``name``; the task fails with a clear message if it is missing."""
        if name not in self.globals:
            raise MissingName(name, kind)
        return self.globals[name]

    def get(self, name, default=None):
        return self.globals.get(name, default)

    def __contains__(self, name):
        return name in self.globals


# ----------------------------------------------------------------------------------------- requests
_PROBES = {}


def _student_frame(filename, student_dirs):
    if filename.startswith("<cell ") or filename.startswith("<ipython-input"):
        return True
    if "/ipykernel_" in filename or "/ipykernel-" in filename:
        return True
    return any(filename.startswith(d) for d in student_dirs)


def describe_exception(exc, student_dirs=()):
    """Classify an exception from a probe: student code, missing name, or the probe itself."""
    if isinstance(exc, MissingName):
        return {"ok": False, "kind": "missing", "name": exc.name, "what": exc.kind}
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if _student_frame(f.filename, student_dirs)]
    message = str(exc)
    if len(message) > 600:
        message = message[:600] + " ..."
    info = {"ok": False, "type": type(exc).__name__, "message": message}
    if student:
        last = student[-1]
        where = last.filename.strip("<>") if last.filename.startswith("<") else os.path.basename(last.filename)
        info["where"] = f"{where}, line {last.lineno}" + (f", in {last.name}" if last.name != "<module>" else "")
        info["kind"] = "notimplemented" if isinstance(exc, NotImplementedError) else "student"
    else:
        info["kind"] = "probe"
    return info


def handle(namespace, request, student_dirs=()):
    """Serve one decoded request against the notebook's namespace; returns a response dict."""
    op = request.get("op")
    try:
        if op == "has":
            return {"ok": True, "value": request["name"] in namespace}
        if op == "probe":
            source, name = request["source"], request["name"]
            key = hashlib.sha256(source.encode()).hexdigest()
            fn = _PROBES.get((key, name))
            if fn is None:
                scope = {"__name__": "autograder_probe"}
                exec(compile(source, "<grader probe>", "exec"), scope)
                fn = _PROBES[(key, name)] = scope[name]
            value = fn(StudentNamespace(namespace), *request.get("args", ()), **request.get("kwargs", {}))
            return {"ok": True, "value": value}
        return {"ok": False, "kind": "probe", "type": "ValueError", "message": f"unknown request {op!r}"}
    except Exception as exc:  # noqa: BLE001 - every failure becomes data for the judge
        return describe_exception(exc, student_dirs)
    except SystemExit as exc:
        return {"ok": False, "kind": "student", "type": "SystemExit",
                "message": f"your code called sys.exit({exc.code!r})", "where": ""}


# ------------------------------------------------------------------------------------- lock down
def _readable_by_others(path):
    """Whether an unprivileged user can read ``path`` (every parent folder searchable by others)."""
    import stat

    path = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def lock_down(memory_bytes, file_bytes, drop_user):
    """Cut the network, drop to an unprivileged user and set resource limits; returns notes."""
    import resource

    notes = []
    if os.geteuid() == 0 and drop_user:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) == 0:  # CLONE_NEWNET: a network namespace with no interfaces
            notes.append("network: none")
        else:
            notes.append("network: could not be isolated")
    else:
        notes.append("network isolation unavailable (not running as root)")
    needed = [os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    if os.geteuid() == 0 and drop_user and not all(_readable_by_others(p) for p in needed):
        notes.append("user isolation unavailable (the Python installation is not readable by other users)")
    elif os.geteuid() == 0 and drop_user:
        try:
            import pwd
            entry = pwd.getpwnam("nobody")
            uid, gid = entry.pw_uid, entry.pw_gid
        except KeyError:
            uid = gid = 65534
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        notes.append("user: nobody")
    with open("/proc/self/status") as status:
        vm = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize")), 0)
    limit = vm + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    if os.geteuid() != 0:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))
        except (ValueError, OSError):
            pass
    notes.append(f"memory: {memory_bytes // 2**20} MiB beyond the loaded libraries")
    return notes


# ---------------------------------------------------------------------------------------- cells
class _Shell:
    """Enough of IPython for notebook cells: magics that matter run, the rest are ignored."""

    def __init__(self, namespace):
        self.namespace = namespace

    def run_line_magic(self, name, line, *args, **kwargs):
        if name in ("time", "timeit") and line.strip():
            exec(compile(line, "<magic>", "exec"), self.namespace)
        return None

    def run_cell_magic(self, name, line, cell, *args, **kwargs):
        if name in ("time", "timeit", "capture"):
            exec(compile(cell, "<magic>", "exec"), self.namespace)
        elif name == "writefile":
            parts = line.split()
            append = "-a" in parts or "--append" in parts
            path = [p for p in parts if not p.startswith("-")][0]
            with open(path, "a" if append else "w") as handle:
                handle.write(cell)
        return None

    def system(self, *args, **kwargs):
        return None

    getoutput = system

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _transform(source):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to the raw source; a SyntaxError is reported at compile
        return source


def _on_alarm(signum, frame):
    raise CellTimeout()


def run_cells(cells, namespace, cell_timeout, progress):
    """Run ``cells`` ([(index, source)]) in ``namespace``; returns a list of error records."""
    errors = []
    signal.signal(signal.SIGALRM, _on_alarm)
    for index, source in cells:
        progress(index)
        filename = CELL_FILENAME.format(index)
        try:
            code = compile(_transform(source), filename, "exec")
        except SyntaxError as exc:
            errors.append({"index": index, "type": "SyntaxError", "message": str(exc.msg), "line": exc.lineno})
            continue
        try:
            signal.setitimer(signal.ITIMER_REAL, cell_timeout)
            exec(code, namespace)
        except CellTimeout:
            errors.append({"index": index, "type": "Timeout",
                           "message": f"the cell ran longer than {cell_timeout:g} s and was stopped", "line": None})
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: the next cell still runs
            signal.setitimer(signal.ITIMER_REAL, 0)
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
            message = str(exc) if not isinstance(exc, SystemExit) else f"sys.exit({exc.code!r}) was called"
            errors.append({"index": index, "type": type(exc).__name__, "message": message[:600],
                           "line": frames[-1].lineno if frames else None})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return errors


# ----------------------------------------------------------------------------------------- main
def main():
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    os.set_inheritable(read_fd, False)
    os.set_inheritable(write_fd, False)
    from autograder.channel import ChannelClosed, recv_frame, send_frame

    start = json.loads(recv_frame(read_fd).decode())
    import torch  # loaded before the memory limit, which is counted beyond it

    torch.set_num_threads(max(1, int(start.get("threads", 1))))
    try:
        import IPython.core.inputtransformer2  # noqa: F401 - loaded before the user is dropped
    except ImportError:
        pass
    from autograder import codec

    notes = lock_down(start["memory_bytes"], start["file_bytes"], start["drop_user"])

    def send(obj):
        send_frame(write_fd, codec.encode(obj))

    def progress(index):
        send({"event": "cell", "index": index})

    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    namespace["get_ipython"] = lambda: _Shell(namespace)
    namespace["display"] = lambda *args, **kwargs: None
    cwd = os.getcwd()
    t0 = time.monotonic()
    errors = run_cells([tuple(c) for c in start["cells"]], namespace, start["cell_timeout"], progress)
    send({"event": "ready", "cell_errors": errors, "notes": notes, "seconds": time.monotonic() - t0})
    while True:
        try:
            request = codec.decode(recv_frame(read_fd))
        except ChannelClosed:
            return
        if request.get("op") == "exit":
            return
        response = handle(namespace, request, student_dirs=(cwd,))
        try:
            send(response)
        except codec.CodecError as exc:
            send({"ok": False, "kind": "encode", "type": "TypeError", "message": str(exc)})


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
