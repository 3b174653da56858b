"""The student's process: runs the notebook's code, then answers probes with plain data.

Started inside the sandbox (``autograder.sandbox.isolation``) as
``python -s -B -P -c "from autograder.sandbox.inside.worker import main; main()" READ_FD WRITE_FD``. It imports torch,
sets its resource limits (memory, file size, core dumps, processes), runs the notebook's cells one by one
(errors are recorded and the next cell runs, as in Jupyter), then serves requests until told to exit.

Every request runs in a fresh fork of this process: only the forking thread exists there, so threads the
notebook started cannot interfere with a probe, and the probe's own changes vanish with it. Before the
fork, what the notebook may have monkeypatched (torch, builtins, this engine's modules) is put back.
Every frame carries the nonce of the message it answers. Time limits are enforced by the judge, which
kills the whole sandbox; the cell alarm here only keeps the process usable after a slow cell.
"""
import builtins
import hashlib
import json
import os
import signal
import sys
import time
import traceback

CELL_FILENAME = "<cell {}>"
MESSAGE_CHARS = 300


class MissingName(LookupError):
    """A name the grader needs is not defined by the notebook."""

    def __init__(self, name, kind="function"):
        super().__init__(name)
        self.name = name
        self.kind = kind


class LibraryObject(LookupError):
    """A graded name is bound to an object from a course module hidden while this assignment is graded."""

    def __init__(self, name, module):
        super().__init__(name)
        self.name = name
        self.module = module


class CellTimeout(BaseException):
    """A notebook cell ran past its time limit."""


class StudentNamespace:
    """What a probe sees of the notebook: ``ns.require(name)``, ``ns.get(name)``, ``name in ns``."""

    def __init__(self, namespace, hidden_modules=()):
        self.globals = namespace
        self.hidden = tuple(hidden_modules)

    def require(self, name, kind="function"):
        """The notebook's object called ``name``; the task fails with a clear message if it is missing."""
        if name not in self.globals:
            raise MissingName(name, kind)
        value = self.globals[name]
        module = getattr(value, "__module__", None) if callable(value) else None
        if isinstance(module, str) and any(module == f"course.{m}" or module.startswith(f"course.{m}.")
                                           for m in self.hidden):
            raise LibraryObject(name, module)
        return value

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


def _short(text, limit=MESSAGE_CHARS):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def describe_exception(exc, student_dirs=()):
    """Classify an exception from a probe: student code, missing name, or the probe itself."""
    if isinstance(exc, MissingName):
        return {"ok": False, "kind": "missing", "name": exc.name, "what": exc.kind}
    if isinstance(exc, LibraryObject):
        return {"ok": False, "kind": "library", "name": exc.name, "module": exc.module}
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if _student_frame(f.filename, student_dirs)]
    info = {"ok": False, "type": type(exc).__name__, "message": _short(exc)}
    if student:
        last = student[-1]
        where = last.filename.strip("<>") if last.filename.startswith("<") else os.path.basename(last.filename)
        info["where"] = f"{where}, line {last.lineno}" + (f", in {last.name}" if last.name != "<module>" else "")
        # A stub raises NotImplementedError itself: the innermost frame is the student's own line.
        # NotImplementedError raised inside torch or another library is an ordinary error.
        stub = isinstance(exc, NotImplementedError) and frames and frames[-1] is last
        info["kind"] = "notimplemented" if stub else "student"
    else:
        info["kind"] = "probe"
    return info


def handle(namespace, request, student_dirs=(), hidden_modules=()):
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
            ns = StudentNamespace(namespace, hidden_modules)
            value = fn(ns, *request.get("args", ()), **request.get("kwargs", {}))
            return {"ok": True, "value": value}
        return {"ok": False, "kind": "probe", "type": "ValueError", "message": f"unknown request {op!r}"}
    except Exception as exc:  # noqa: BLE001 - every failure becomes data for the judge
        return describe_exception(exc, student_dirs)
    except SystemExit as exc:
        return {"ok": False, "kind": "student", "type": "SystemExit",
                "message": _short(f"your code called sys.exit({exc.code!r})"), "where": ""}


# -------------------------------------------------------------------------------- pristine state
class Pristine:
    """A snapshot of what the notebook could monkeypatch, and how to put it back."""

    # the engine's own modules beside the student's code, the probe helpers included
    ENGINE = ("autograder.sandbox.inside.worker", "autograder.sandbox.inside.codec",
              "autograder.sandbox.inside.channel", "autograder.sandbox.inside.probing")
    MODULES = ("builtins", "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.autograd",
               "torch.optim", "torch.utils.data", "math", "json", "struct", "os", "sys", "io", "autograder") + ENGINE

    def __init__(self):
        import torch

        self.modules = {name: sys.modules[name] for name in self.MODULES if name in sys.modules}
        self.module_dicts = {name: dict(vars(module)) for name, module in self.modules.items()
                             if name != "sys"}
        classes = [torch.Tensor, torch.nn.Module, torch.nn.Parameter, torch.optim.Optimizer,
                   torch.utils.data.DataLoader, torch.Generator, torch.device, torch.dtype]
        # the engine's own classes (this one included): a replaced method would run in every probe
        engine = [name for name in self.ENGINE if name in self.modules]
        for name in engine:
            classes += [v for v in vars(self.modules[name]).values()
                        if isinstance(v, type) and v.__module__ == name]
        self.classes = {}
        for cls in classes:
            try:
                self.classes[cls] = dict(vars(cls))
            except TypeError:
                pass
        self.functions = []
        for name in engine:
            for value in vars(self.modules[name]).values():
                for fn in [value] + ([v for v in vars(value).values()] if isinstance(value, type) else []):
                    if hasattr(fn, "__code__"):
                        self.functions.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))

    def restore(self):
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
        for name, saved in self.module_dicts.items():
            current = vars(self.modules[name])
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        for cls, saved in self.classes.items():
            for key in [k for k in list(vars(cls)) if k not in saved]:
                try:
                    delattr(cls, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in saved.items():
                if vars(cls).get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for fn, code, defaults, kwdefaults in self.functions:
            if fn.__code__ is not code:
                fn.__code__ = code
            if fn.__defaults__ is not defaults:
                fn.__defaults__ = defaults
            if fn.__kwdefaults__ is not kwdefaults:
                fn.__kwdefaults__ = kwdefaults


_MISSING = object()


# ------------------------------------------------------------------------------ interpreter guard
# Audit events the report names: direct access to the process's memory, and interpreter-wide hooks.
WATCHED_EVENTS = {"ctypes.dlopen": "ctypes", "ctypes.dlsym": "ctypes", "ctypes.addressof": "ctypes",
                  "ctypes.cdata": "ctypes", "ctypes.call_function": "ctypes",
                  "sys.setprofile": "sys.setprofile", "sys.settrace": "sys.settrace",
                  "sys.addaudithook": "sys.addaudithook"}


class Guard:
    """Defence in depth inside the student's process (the judge relies on none of it: it decides from data).

    Installed before the notebook runs: the engine's audit hook, which refuses any further audit hook and
    records the use of ctypes and of profile or trace functions (named in the report); and what every probe
    is reset to before it runs: no profile or trace function, no garbage-collector callback, the import
    system's finders, hooks and path as they were before the notebook ran."""

    def __init__(self):
        import gc

        self.gc = gc
        self.used = set()
        self.quiet = False
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.path = list(sys.path)
        self.callbacks = list(gc.callbacks)

    def hook(self, event, args):
        what = WATCHED_EVENTS.get(event)
        if what is None or self.quiet:
            return
        self.used.add(what)
        if event == "sys.addaudithook":
            raise RuntimeError("audit hooks are reserved to the grader")   # the new hook is not added

    def install(self):
        sys.addaudithook(self.hook)

    def reset(self):
        import threading

        self.quiet = True
        try:
            sys.setprofile(None)
            sys.settrace(None)
            threading.setprofile(None)
            threading.settrace(None)
        finally:
            self.quiet = False
        self.gc.callbacks[:] = self.callbacks
        sys.meta_path[:] = self.meta_path
        sys.path_hooks[:] = self.path_hooks
        sys.path[:] = self.path
        sys.path_importer_cache.clear()


# ------------------------------------------------------------------------------------- limits
def set_limits(memory_bytes, file_bytes, max_processes):
    """Address space beyond what is loaded now, largest file, no core dumps, process count."""
    import resource

    with open("/proc/self/status") as status:
        vm = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize")), 0)
    limit = vm + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    if max_processes:
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            wanted = max_processes if hard == resource.RLIM_INFINITY else min(max_processes, hard)
            resource.setrlimit(resource.RLIMIT_NPROC, (wanted, wanted))
        except (ValueError, OSError):
            pass


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
    for index, source in cells:
        signal.signal(signal.SIGALRM, _on_alarm)
        progress(index)
        filename = CELL_FILENAME.format(index)
        try:
            code = compile(_transform(source), filename, "exec")
        except SyntaxError as exc:
            errors.append({"index": index, "type": "SyntaxError", "message": _short(exc.msg), "line": exc.lineno})
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
            errors.append({"index": index, "type": type(exc).__name__, "message": _short(message),
                           "line": frames[-1].lineno if frames else None})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return errors


# ----------------------------------------------------------------------------------------- main
def load_runtime(threads=1):
    """Import torch and what running cells needs (before the memory limit, which counts beyond it)."""
    import torch
    import torch.nn.functional  # noqa: F401
    import torch._dynamo  # noqa: F401 - what a first optimizer imports: 2.4 s in every probe's fork otherwise
    import torch.optim  # noqa: F401
    import torch.utils.data  # noqa: F401

    torch.set_num_threads(max(1, int(threads)))
    try:
        import IPython.core.inputtransformer2  # noqa: F401 - loaded before the notebook runs
    except ImportError:
        pass
    from autograder.sandbox.inside import codec, probing  # noqa: F401 - probing: imported by probes in every fork
    try:
        from autograder.sandbox.inside import syscalls
        syscalls.available()      # loads libseccomp once (a warm box's gradings then only build the filter)
    except ImportError:
        pass


def main():
    """A grading process of its own: ``READ_FD WRITE_FD`` on the command line."""
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    serve(read_fd, write_fd)                  # loads the runtime itself
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)                   # no interpreter teardown: nothing is left to save


def serve(read_fd, write_fd):
    """Run the notebook sent on ``read_fd``, then answer requests until told to exit."""
    os.set_inheritable(read_fd, False)
    os.set_inheritable(write_fd, False)
    from autograder.sandbox.inside.channel import ChannelClosed, recv_frame, send_frame

    start = json.loads(recv_frame(read_fd).decode())
    load_runtime(start.get("threads", 1))
    from autograder.sandbox.inside import codec

    set_limits(start["memory_bytes"], start["file_bytes"], start.get("max_processes"))
    if start.get("landlock"):
        from autograder.sandbox.inside import landlock
        landlock.restrict(start["landlock"].get("read", ()), start["landlock"].get("write", ()))
    if start.get("seccomp"):
        from autograder.sandbox.inside import syscalls
        syscalls.install()          # raises when it cannot: the judge asked for it, so nothing runs without
    hidden = tuple(start.get("hidden_modules", ()))
    startup_nonce = start.get("nonce")
    import gc

    encode, getpid, fork, waitpid, exit_now, freeze = codec.encode, os.getpid, os.fork, os.waitpid, os._exit, gc.freeze
    exit_code = os.waitstatus_to_exitcode

    def send(obj):
        send_frame(write_fd, encode(obj))

    def progress(index):
        send({"event": "cell", "index": index, "nonce": startup_nonce})

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    namespace["get_ipython"] = lambda: _Shell(namespace)
    namespace["display"] = lambda *args, **kwargs: None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)       # the notebook's own modules (``%%writefile``), after every library
    pristine = Pristine()
    restore = pristine.restore
    guard = Guard()
    reset = guard.reset
    guard.install()
    t0 = time.monotonic()
    errors = run_cells([tuple(c) for c in start["cells"]], namespace, start["cell_timeout"], progress)
    restore()
    reset()
    send({"event": "ready", "cell_errors": errors, "seconds": time.monotonic() - t0, "nonce": startup_nonce,
          "used": sorted(guard.used)})
    while True:
        restore()
        reset()
        try:
            request = codec.decode(recv_frame(read_fd))
        except (ChannelClosed, codec.CodecError):
            return
        if not isinstance(request, dict) or request.get("op") == "exit":
            return
        nonce = request.get("nonce")
        freeze()                 # the probe's garbage collections leave the notebook's objects alone
        try:
            pid = fork()
        except OSError:
            # the notebook's own processes use up the process limit: this check cannot start
            send({"ok": False, "kind": "probe", "type": "BlockingIOError", "nonce": nonce,
                  "message": "the processes your notebook started use up the process limit, so no check "
                             "could start"})
            send({"event": "done", "status": 0, "nonce": nonce, "pid": getpid()})
            continue
        if pid == 0:
            status = 0
            try:
                restore()
                reset()
                response = handle(namespace, request, student_dirs=(cwd,), hidden_modules=hidden)
                if isinstance(response, dict):
                    response["nonce"] = nonce
                try:
                    data = encode(response)
                except Exception as exc:  # noqa: BLE001 - CodecError, or a value whose methods fail
                    data = encode({"ok": False, "kind": "encode", "type": type(exc).__name__,
                                   "message": _short(exc), "nonce": nonce})
                send_frame(write_fd, data)
            except BaseException:  # noqa: BLE001 - the judge learns of it from the exit status
                status = 70
            exit_now(status)
        while True:
            try:
                _, wait_status = waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                wait_status = 0
                break
        send({"event": "done", "status": exit_code(wait_status), "nonce": nonce,
              "pid": getpid()})


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
