"""Where the student's process runs: a bubblewrap sandbox, else a dedicated unprivileged user.

Tiers, strongest first (``Limits.isolation``: "auto" picks the first that works here):

- ``bwrap``: Debian's bubblewrap with new user, PID, network, IPC, UTS and mount namespaces, uid 65534
  inside, every capability dropped, ``--die-with-parent``, ``--new-session``. The file system is a
  read-only view of the Python runtime, its site-packages and a staged copy of the ``course`` library
  that the assignment may import, plus a size-limited private tmpfs as home and working folder.
  Run as root, bubblewrap itself is started as a grading uid of its own (when the runtime is readable
  by other users), so that the process-count limit applies and nothing runs as root.
- ``user``: where bubblewrap cannot start (e.g. Docker's default seccomp profile), as root: the
  process runs as a grading uid of its own with a private working folder; it can read what any user can
  read and write nothing else; every process of that uid is killed when the grading ends.
- ``none``: no isolation; only on explicit request (``--unsafe-no-sandbox``), and reports say so.

Each grading gets a uid of its own (a lock file per uid), so gradings in parallel never share one, and,
where cgroups are writable, a pids and memory cgroup that bounds every process it starts.
"""
import errno
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid

from autograder import ROOT

UID_BASE, UID_COUNT = 61000, 1000       # grading uids: 61000-61999, not in /etc/passwd
SLOT_DIRS = ("/run/autograder-uids", os.path.join(tempfile.gettempdir(), ".autograder-uids"))
SANDBOX_HOME = "/home/student"
SANDBOX_LIB = "/opt/grading/lib"
HIDDEN_SYSTEM_DATA = ("/usr/share/datasets",)
INSIDE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside")

_bwrap_ok = {}


class IsolationUnavailable(RuntimeError):
    """No sandbox can be started here; the message names the fix."""


# ------------------------------------------------------------------------------------------ probes
def readable_by_others(path):
    """Whether an unprivileged user can reach ``path`` (every parent folder searchable by others)."""
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


def runtime_paths():
    """Folders the student's Python needs, read-only: the interpreter's installation and the venv."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    exe = os.path.realpath(sys.executable)
    if not any(exe.startswith(p + os.sep) for p in paths):
        paths.add(os.path.dirname(exe))
    return sorted(paths)


def runtime_readable():
    """Whether a grading uid can read the Python runtime (needed by the 'user' tier)."""
    return all(readable_by_others(p) for p in runtime_paths())


def bwrap_path():
    return shutil.which("bwrap")


def bwrap_works(as_uid=None):
    """Whether bubblewrap can start a sandbox here (tried once per process and uid)."""
    key = None if as_uid is None else "grading uid"     # every grading uid behaves alike
    if key in _bwrap_ok:
        return _bwrap_ok[key]
    exe = bwrap_path()
    ok = False
    if exe:
        argv = [exe, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop",
                "ALL", "--die-with-parent", "--new-session"] + _system_binds() + ["--proc", "/proc", "--dev",
                                                                                 "/dev", "true"]
        preexec = (lambda: _become(as_uid)) if as_uid is not None else None
        try:
            ok = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=30, preexec_fn=preexec).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    _bwrap_ok[key] = ok
    return ok


def choose_tier(requested="auto"):
    """The isolation tier to use for ``requested`` ("auto", "bwrap", "user" or "none")."""
    if requested == "none":
        return "none"
    root = os.geteuid() == 0
    if requested in ("auto", "bwrap") and bwrap_works():
        return "bwrap"
    if requested == "bwrap":
        raise IsolationUnavailable("bubblewrap cannot start a sandbox here: install it (Debian: apt-get install "
                                   "bubblewrap) and allow user namespaces, or grade as root to use the "
                                   "unprivileged-user tier.")
    if requested in ("auto", "user") and root and runtime_readable():
        return "user"
    if requested in ("auto", "user") and root:
        raise IsolationUnavailable(
            "no sandbox can run here: bubblewrap cannot start, and the Python installation is not readable by "
            f"other users ({', '.join(runtime_paths())}), so the student's code cannot run as an unprivileged "
            "user. Fix: install bubblewrap (apt-get install bubblewrap), or make the runtime readable "
            "(chmod o+x on its parent folders; ./setup.sh does this), or pass --unsafe-no-sandbox to grade "
            "without any protection.")
    raise IsolationUnavailable(
        "no sandbox can run here: bubblewrap cannot start and grading does not run as root (needed to switch "
        "to an unprivileged user). Fix: install bubblewrap (apt-get install bubblewrap) and allow user "
        "namespaces, or grade as root, or pass --unsafe-no-sandbox to grade without any protection.")


# --------------------------------------------------------------------------------------- uid slots
class UidSlot:
    """A grading uid held for the duration of one grading (an exclusive lock file per uid)."""

    def __init__(self, clean_files=False):
        self.uid = None
        self.fd = None
        folder = self._folder()
        start = (os.getpid() * 7919) % UID_COUNT
        for i in range(UID_COUNT):
            uid = UID_BASE + (start + i) % UID_COUNT
            fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self.fd = uid, fd
            kill_uid(uid)           # anything a grading that was itself killed left behind
            if clean_files:
                remove_files_of(uid)
            return
        raise IsolationUnavailable("all grading uids are in use")

    @staticmethod
    def _folder():
        for folder in SLOT_DIRS:
            try:
                os.makedirs(folder, mode=0o700, exist_ok=True)
                info = os.lstat(folder)
                if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o077:
                    return folder
            except OSError:
                continue
        raise IsolationUnavailable("no private folder for grading uid locks (/run or the temp folder)")

    def release(self):
        if self.fd is not None:
            kill_uid(self.uid)
            os.close(self.fd)
            self.fd = None


def become_subreaper():
    """Make orphaned descendants (a sandbox's init whose parent died) children of this process, to reap."""
    global _subreaper
    if not _subreaper:
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass
        _subreaper = True


_subreaper = False


def pids_of_uid(uid):
    """Live (not zombie) pids whose real, effective or saved uid is ``uid``; reaps our own zombies of it."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if str(uid) not in fields.get("Uid", "").split()[:3]:
            continue
        if fields.get("State", "").strip().startswith("Z"):
            if fields.get("PPid", "").strip() == str(me):
                try:
                    os.waitpid(int(name), os.WNOHANG)
                except ChildProcessError:
                    pass
            continue
        found.append(int(name))
    return found


def kill_uid(uid, rounds=100):
    """SIGKILL every process of ``uid`` (a helper that becomes ``uid`` and calls kill(-1)); True when none is left."""
    for _ in range(rounds):
        if not pids_of_uid(uid):
            return True
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)   # every process this uid may signal, except this one
            except BaseException:             # noqa: BLE001 - nothing to report from a helper
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.01)
    return not pids_of_uid(uid)


SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", tempfile.gettempdir())


def remove_files_of(uid, folders=SCRATCH_DIRS):
    """Delete every file and folder owned by ``uid`` under ``folders`` (world-writable places it could use)."""
    for folder in dict.fromkeys(os.path.realpath(f) for f in folders if os.path.isdir(f)):
        for dirpath, dirnames, filenames in os.walk(folder):
            keep = []
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if info.st_uid == uid:
                    if stat.S_ISDIR(info.st_mode):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        try:
                            os.unlink(path)
                        except OSError:
                            pass
                elif stat.S_ISDIR(info.st_mode):
                    keep.append(name)
            dirnames[:] = [d for d in dirnames if d in keep]


def _become(uid, nproc=None):
    if uid is None:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if nproc:
        import resource
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


# ------------------------------------------------------------------------------------------ cgroups
class Cgroups:
    """pids, memory and cpu cgroups (v1 or v2) for one grading, where this process may create them.

    The cpu controller gives every box the same share of the machine however many processes it runs, and
    caps it at ``cpus`` CPUs' worth of time (a quota per 100 ms period): a submission that starts many busy
    processes slows only itself, never a classmate graded beside it."""

    PERIOD_US = 100_000
    SHARES = 1024                     # v1 default weight: one box weighs as much as any other process group

    def __init__(self, max_pids, memory_bytes, cpus=1.0):
        self.paths = []
        name = "autograder-" + uuid.uuid4().hex[:12]
        quota = str(max(1000, int(cpus * self.PERIOD_US))) if cpus else "-1"
        for controller, settings in (("pids", {"pids.max": str(max_pids)}),
                                     ("memory", {"memory.limit_in_bytes": str(memory_bytes),
                                                 "memory.memsw.limit_in_bytes": str(memory_bytes)}),
                                     ("cpu", {"cpu.shares": str(self.SHARES),
                                              "cpu.cfs_period_us": str(self.PERIOD_US),
                                              "cpu.cfs_quota_us": quota})):
            base = self._v1_base(controller)
            if base is None:
                continue
            path = os.path.join(base, name)
            try:
                os.mkdir(path)
            except OSError:
                continue
            applied = False
            for key, value in settings.items():
                try:
                    with open(os.path.join(path, key), "w") as handle:
                        handle.write(value)
                    applied = True
                except OSError:
                    pass
            if applied:
                self.paths.append((controller, path))
            else:
                self._remove(path)
        if not self.paths:
            self._try_v2(name, max_pids, memory_bytes, quota)

    @staticmethod
    def _v1_base(controller):
        mount = os.path.join("/sys/fs/cgroup", controller)
        if not os.path.isfile(os.path.join(mount, "cgroup.procs")):
            return None
        try:
            with open("/proc/self/cgroup") as handle:
                for line in handle:
                    _, controllers, path = line.rstrip("\n").split(":", 2)
                    if controller in controllers.split(","):
                        base = os.path.join(mount, path.lstrip("/"))
                        return base if os.path.isdir(base) else mount
        except OSError:
            return None
        return mount

    def _try_v2(self, name, max_pids, memory_bytes, quota):
        if not os.path.isfile("/sys/fs/cgroup/cgroup.controllers"):
            return
        try:
            with open("/proc/self/cgroup") as handle:
                own = next((line.split(":", 2)[2].strip() for line in handle if line.startswith("0::")), None)
            base = os.path.join("/sys/fs/cgroup", (own or "/").lstrip("/"))
            path = os.path.join(base, name)
            os.mkdir(path)
        except (OSError, StopIteration):
            return
        ok = False
        for key, value in (("pids.max", str(max_pids)), ("memory.max", str(memory_bytes)), ("cpu.weight", "100"),
                           ("cpu.max", f"{quota if quota != '-1' else 'max'} {self.PERIOD_US}")):
            try:
                with open(os.path.join(path, key), "w") as handle:
                    handle.write(value)
                ok = True
                if key.startswith("cpu."):
                    self.cpu = True
            except OSError:
                pass
        if ok:
            self.paths.append(("v2", path))
        else:
            self._remove(path)

    @property
    def limits_processes(self):
        return any(c in ("pids", "v2") for c, _ in self.paths)

    @property
    def limits_cpu(self):
        return any(c == "cpu" for c, _ in self.paths) or getattr(self, "cpu", False)

    @property
    def limits_memory(self):
        return any(c in ("memory", "v2") for c, _ in self.paths)

    def join(self):
        """Move the calling process into every cgroup (called in the child before exec)."""
        for _, path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                    handle.write(str(os.getpid()))
            except OSError:
                pass

    def pids(self):
        found = set()
        for _, path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs")) as handle:
                    found.update(int(line) for line in handle if line.strip())
            except OSError:
                pass
        return found

    def kill_all(self, keep=frozenset()):
        """SIGKILL every process in these cgroups (but those in ``keep``) until none is left."""
        for _ in range(100):
            pids = self.pids() - set(keep)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def close(self):
        self.kill_all()
        for _, path in self.paths:
            self._remove(path)
        self.paths = []

    @staticmethod
    def _remove(path):
        for _ in range(50):
            try:
                os.rmdir(path)
                return
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return
                time.sleep(0.02)


# ---------------------------------------------------------------------------------------- staging
def stage(assignment, folder):
    """Write what the student's process may import into ``folder``: the course library, the worker."""
    from autograder.sandbox.library import stage_library

    lib = os.path.join(folder, "lib")
    inside = os.path.join(lib, "autograder", "sandbox", "inside")
    os.makedirs(inside)
    if assignment:
        stage_library(assignment, lib)
    else:
        shutil.copytree(os.path.join(ROOT, "course"), os.path.join(lib, "course"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # the code that runs beside the student's, and nothing else of the engine: empty parent packages
    for package in (os.path.join(lib, "autograder"), os.path.join(lib, "autograder", "sandbox")):
        open(os.path.join(package, "__init__.py"), "w").close()
    for name in sorted(os.listdir(INSIDE_DIR)):
        if name.endswith(".py"):
            shutil.copy(os.path.join(INSIDE_DIR, name), os.path.join(inside, name))
    open(os.path.join(folder, "empty"), "w").close()        # shown in place of hidden files
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return lib


def _system_binds():
    """Read-only views of the system folders every program needs (/usr and what links into it)."""
    args = []
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime",
                 "/etc/alternatives"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


PROJECT_PACKAGES = ("course", "autograder")


def _site_folders():
    """The site-packages folders inside the runtime (the interpreter's and the venv's)."""
    import glob

    found = []
    for root in runtime_paths():
        found += glob.glob(os.path.join(root, "lib", "python3*", "site-packages"))
        found += glob.glob(os.path.join(root, "lib", "python3*", "dist-packages"))
    return sorted(set(found))


def installed_project():
    """What of this course an install put into the runtime's site-packages, however it was installed:
    editable-install hooks (``__editable__*``, ``.egg-link``, a ``.pth`` naming the checkout), the packages
    ``course`` and ``autograder`` themselves (``pip install .``), and their distribution's metadata. The
    sandbox shows none of it: the staged library is the only ``course`` inside."""
    hidden = []
    for site in _site_folders():
        try:
            names = os.listdir(site)
        except OSError:
            continue
        for name in names:
            path = os.path.join(site, name)
            stem = name.split(".")[0]
            if name.startswith("__editable__") or name.endswith(".egg-link"):
                hidden.append(path)
            elif stem in PROJECT_PACKAGES and (os.path.isdir(path) or name.endswith((".py", ".pyc"))):
                hidden.append(path)
            elif name.endswith((".dist-info", ".egg-info")) and _is_project_metadata(path):
                hidden.append(path)
            elif name.endswith(".pth") and _names_the_checkout(path):
                hidden.append(path)
    return sorted(hidden)


def _is_project_metadata(path):
    try:
        with open(os.path.join(path, "top_level.txt")) as handle:
            if set(handle.read().split()) & set(PROJECT_PACKAGES):
                return True
    except OSError:
        pass
    try:
        with open(os.path.join(path, "RECORD")) as handle:
            return any(line.startswith(tuple(p + "/" for p in PROJECT_PACKAGES)) for line in handle)
    except OSError:
        return False


def _names_the_checkout(path):
    try:
        with open(path) as handle:
            return ROOT in handle.read()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------- boxes
class Box:
    """The isolation of one grading: builds the command line, starts and finally kills everything."""

    def __init__(self, tier, assignment, limits):
        become_subreaper()
        self.tier = tier
        self.limits = limits
        self.slot = None
        self.cgroups = None
        self.folder = tempfile.mkdtemp(prefix="grading-")
        os.chmod(self.folder, 0o755)
        self.lib = stage(assignment, self.folder)
        self.workdir = os.path.join(self.folder, "work")
        os.mkdir(self.workdir)
        self.uid = None
        root = os.geteuid() == 0
        if tier in ("bwrap", "user") and root and (tier == "user" or runtime_readable()):
            self.slot = UidSlot(clean_files=tier == "user")
            self.uid = self.slot.uid
            if tier == "bwrap" and not bwrap_works(self.uid):
                self.uid = None          # bubblewrap cannot run unprivileged here: run it as root instead
        if tier != "none":
            memory = limits.memory_bytes + limits.runtime_bytes
            self.cgroups = Cgroups(limits.max_processes + 8, memory, getattr(limits, "cpus", 1.0))
        if self.uid is not None and tier == "user":
            os.chown(self.workdir, self.uid, self.uid)
        os.chmod(self.workdir, 0o700 if tier != "none" else 0o755)

    # -- what the student's process sees
    def env(self, base):
        env = dict(base)
        if self.tier == "bwrap":
            home = SANDBOX_HOME
            env["PYTHONPATH"] = SANDBOX_LIB
        else:
            home = self.workdir
            env["PYTHONPATH"] = self.lib
        env.update({"HOME": home, "TMPDIR": home, "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
                    "USER": "student", "LOGNAME": "student", "PYTHONNOUSERSITE": "1"})
        return env

    @property
    def cwd(self):
        return SANDBOX_HOME if self.tier == "bwrap" else self.workdir

    def command(self, argv, capabilities=False):
        """The command line that runs ``argv`` (a Python command) in this box.

        ``capabilities=True`` (a warm box's fork server, ``autograder.sandbox.inside.zygote``) keeps the capabilities of
        the sandbox's own user namespace, which it needs to give each grading namespaces of its own; it
        drops them in every grading process before any of the student's code runs."""
        if self.tier != "bwrap":
            return list(argv)
        caps = ["--cap-add", "ALL"] if capabilities else ["--cap-drop", "ALL"]
        size = str(self.limits.disk_bytes)
        args = [bwrap_path(), "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", *caps,
                "--die-with-parent", "--new-session", "--hostname", "grading",
                # private scratch space first: the runtime may itself live under /tmp and is bound over it
                "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm",
                "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", SANDBOX_HOME]
        args += _system_binds()
        for path in runtime_paths():
            args += ["--ro-bind", path, path]
        for path in installed_project():
            if os.path.isdir(path):
                args += ["--tmpfs", path, "--remount-ro", path]      # an empty, read-only folder instead
            else:
                args += ["--ro-bind", os.path.join(self.folder, "empty"), path]   # an empty file instead
        for folder in HIDDEN_SYSTEM_DATA:
            if os.path.isdir(folder):
                # data sets installed system-wide hold labels to predict: an empty, read-only folder instead
                args += ["--tmpfs", folder, "--remount-ro", folder]
        args += ["--ro-bind", self.lib, SANDBOX_LIB]
        # nothing but the scratch folders is writable: the sandbox's root and /dev are read-only
        args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_HOME]
        return args + list(argv)

    def preexec(self):
        """Runs in the child between fork and exec: cgroups, network, user, process limit."""
        if self.cgroups is not None:
            self.cgroups.join()
        if self.tier == "user":
            try:
                import ctypes
                ctypes.CDLL(None, use_errno=True).unshare(0x40000000)   # CLONE_NEWNET where allowed
            except OSError:
                pass
        nproc = self.limits.max_processes + 8 if self.uid is not None else None
        _become(self.uid, nproc)

    def landlock_rules(self):
        """The user tier's file allow-list (``autograder.sandbox.inside.landlock``), or None where it does not apply here."""
        if self.tier != "user":
            return None
        from autograder.sandbox.inside import landlock

        if landlock.abi() < 1:
            return None
        read = runtime_paths() + [self.lib] + landlock.system_reads(HIDDEN_SYSTEM_DATA)
        return {"read": read, "write": [self.workdir, "/dev/null"]}

    def network_isolated(self):
        return self.tier == "bwrap"

    def protections(self, limits=None):
        """One line per protection in force, for staff (stderr of the CLI); the time limits are ``limits``'
        (one grading's), else the box's own."""
        timing = limits or self.limits
        if self.tier == "none":
            return ["NO SANDBOX: the student's code ran with the grader's own rights (--unsafe-no-sandbox)"]
        lines = []
        if self.tier == "bwrap":
            who = f"uid {self.uid}" if self.uid is not None else "root (bubblewrap could not run unprivileged)"
            lines += ["sandbox: bubblewrap (user, pid, network, ipc, uts, mount namespaces; no capabilities)",
                      f"outside the sandbox the process runs as {who}",
                      "files: read-only runtime and course library, private tmpfs home "
                      f"({self.limits.disk_bytes // 2**20} MiB)",
                      "network: none"]
        elif self.landlock_rules() is not None:
            lines += [f"sandbox: unprivileged user {self.uid} (bubblewrap unavailable)",
                      "files: Landlock allows reading only the runtime, the system's libraries and the course "
                      "library, and writing only its own folder",
                      "network: cut where a network namespace could be made, else NOT isolated"]
        else:
            lines += [f"sandbox: unprivileged user {self.uid} (bubblewrap unavailable)",
                      "files: readable as any user can, writable only in its own folder",
                      "network: cut where a network namespace could be made, else NOT isolated"]
        processes = []
        if self.cgroups is not None and self.cgroups.limits_processes:
            processes.append("cgroup")
        if self.uid is not None:
            processes.append("RLIMIT_NPROC")
        lines.append(f"processes: at most {self.limits.max_processes} ({', '.join(processes)})" if processes
                     else "processes: count not limited (no writable cgroup, not root)")
        memory = f"memory: {self.limits.memory_bytes // 2**20} MiB beyond the loaded libraries"
        if self.cgroups is not None and self.cgroups.limits_memory:
            memory += " (and a memory cgroup for all its processes)"
        lines.append(memory)
        if self.cgroups is not None and self.cgroups.limits_cpu:
            lines.append(f"cpu: an equal share, at most {self.limits.cpus:g} CPU (cgroup)")
        lines.append(f"time: {timing.cell_timeout:g} s per cell, {timing.call_timeout:g} s per check, "
                     f"{timing.grading_budget:g} s for all checks, enforced by killing")
        return lines

    def kill_all(self):
        """Kill every process this grading started."""
        if self.cgroups is not None:
            self.cgroups.kill_all()
        if self.uid is not None:
            kill_uid(self.uid)

    def close(self):
        self.kill_all()
        if self.cgroups is not None:
            self.cgroups.close()
        if self.tier == "user" and self.uid is not None:
            remove_files_of(self.uid)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.slot is not None:
            self.slot.release()
