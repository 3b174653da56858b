"""Inside the sandbox: a process with torch loaded that forks one isolated grading process per request.

Started by ``autograder.sandbox.warm.WarmBox`` in a bubblewrap sandbox that keeps its capabilities (inside its
own user namespace only) as ``python -s -B -P -c "from autograder.sandbox.inside.zygote import main; main()" FD``,
where FD is a Unix seqpacket socket to the judge. It imports torch and the libraries notebooks use, then
for each ``{"op": "fork"}`` request (which carries three file descriptors: the grading's request and
answer pipes and its output pipe) forks a child that

1. announces itself on the socket (the kernel tells the judge its pid as the judge sees it);
2. makes its own mount, PID, IPC, network and UTS namespaces, with fresh size-limited tmpfs folders
   on ``/tmp``, ``/home/student`` and ``/dev/shm`` (the root file system is read-only);
3. forks the namespace's init, which mounts its own ``/proc``, drops every capability and the bounding
   set, and forks the grading process: ``autograder.sandbox.inside.worker.serve`` on the two pipes, output to the third.

Nothing of one grading is visible to the next: they share no writable file, no process, no IPC object
and no network, and this process never runs student code. When a grading's init dies (it is killed
with its parent), the kernel kills every process of that namespace. The exit status of each grading
is sent back as ``{"event": "exit", "id": ..., "status": ...}``.
"""
import ctypes
import json
import os
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
HOME = "/home/student"
SCRATCH = {"/tmp": "0755", HOME: "0755", "/dev/shm": "1777"}      # folder: mode of its fresh tmpfs
SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429          # the same number on x86-64 and arm64
AT_FDCWD, AT_RECURSIVE, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = -100, 0x8000, 1, 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 4
# What notebooks import while graded. Not torchvision (2.3 s, and only the data-loading demo cells,
# which are not run when grading, use it): a grading that imports it pays for it itself.
PRELOAD = ("numpy", "matplotlib", "matplotlib.pyplot", "tqdm", "tqdm.auto", "torch.utils.tensorboard")
SETUP_FAILED = 71          # exit status of a grading whose isolation could not be set up

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    _check(libc().mount(source.encode() if source else None, target.encode(),
                        fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                        data.encode() if data else None), f"mount {target}")


def isolate(disk_bytes):
    """New namespaces for one grading, with fresh private scratch folders (this process stays outside
    the new PID namespace; its next child is that namespace's init)."""
    _check(libc().unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # The runtime may live below a scratch folder (a checkout under /tmp): its read-only mounts are
    # detached before the fresh tmpfs covers them, then put back in place on top of it.
    kept = [(path, _clone_tree(path)) for path in _mounts_below(SCRATCH)]
    for path, mode in SCRATCH.items():
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(disk_bytes)},mode={mode}")
    for path, fd in kept:
        os.makedirs(path, exist_ok=True)
        _check(libc().syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_long(fd), b"", ctypes.c_long(AT_FDCWD),
                              path.encode(), ctypes.c_long(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {path}")
        os.close(fd)
    libc().sethostname(b"grading", 7)


def _mounts_below(folders):
    """Mount points strictly below ``folders`` (outermost only), from this mount namespace's table."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point.startswith(folder.rstrip("/") + "/") for folder in folders):
                points.append(point)
    return [p for p in points if not any(p != q and p.startswith(q + "/") for q in points)]


def _clone_tree(path):
    """A detached copy of the mount tree at ``path`` (Linux 5.2+ open_tree), as a file descriptor."""
    fd = libc().syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_long(AT_FDCWD), path.encode(),
                        ctypes.c_long(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return fd


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """Give up every capability for good (bounding set, ambient, effective, permitted, inheritable)."""
    lib = libc()
    for cap in range(64):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break                                   # EINVAL: past the last capability this kernel has
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(lib.capset(ctypes.byref(header), data), "capset")
    _check(lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
        if int(fields.get(key, "0").strip() or "0", 16):
            raise OSError(f"{key} is not empty after dropping capabilities")


def _close_fds(keep):
    """Close every descriptor but ``keep`` (and 0-2)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _exit_code(status):
    """An exit status for a parent to report: the child's code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _grading_init(read_fd, write_fd, out_fd):
    """PID 1 of a grading's namespace: its own /proc, no capabilities, the grading process, reaping."""
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)      # its memory, environment and fds: closed to the grading
    signal.signal(signal.SIGINT, signal.SIG_DFL)      # as init, signals without a handler never arrive
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(HOME)
    drop_capabilities()
    pid = os.fork()
    if pid == 0:
        _run_grading(read_fd, write_fd, out_fd)
    for fd in (read_fd, write_fd, out_fd):
        os.close(fd)
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        except InterruptedError:
            continue
        if done == pid:
            os._exit(_exit_code(status))


def _run_grading(read_fd, write_fd, out_fd):
    """The grading process: the notebook and its probes (``autograder.sandbox.inside.worker.serve``)."""
    status = 0
    try:
        libc().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the grading's own /proc stays its own (init is closed)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        _close_fds({read_fd, write_fd})
        import random
        random.seed()                     # a fresh process would draw its own seeds
        try:
            import numpy
            numpy.random.seed()
        except ImportError:
            pass
        from autograder.sandbox.inside import worker
        worker.serve(read_fd, write_fd)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the judge learns of it from the exit status
        status = 70
    os._exit(status)


def _grading(sock, request_id, fds, disk_bytes):
    """The forked child of one request: announce, isolate, then wait for the namespace's init."""
    try:
        sock.send(json.dumps({"event": "started", "id": request_id}).encode())
        try:
            with open("/proc/self/oom_score_adj", "w") as handle:
                handle.write("1000")      # out of memory, a grading goes before this process
        except OSError:
            pass
        sock.close()
        read_fd, write_fd, out_fd = fds
        _close_fds(set(fds))
        isolate(disk_bytes)
        pid = os.fork()
        if pid == 0:
            try:
                _grading_init(read_fd, write_fd, out_fd)
            except BaseException:  # noqa: BLE001
                pass
            os._exit(SETUP_FAILED)
        for fd in fds:
            os.close(fd)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        os._exit(_exit_code(status))
    except BaseException:  # noqa: BLE001
        os._exit(SETUP_FAILED)


def _self_test(disk_bytes):
    """Whether a grading's isolation can be set up here: a child that isolates itself, then exits."""
    pid = os.fork()
    if pid == 0:
        try:
            isolate(disk_bytes)
            init = os.fork()
            if init == 0:
                try:
                    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    drop_capabilities()
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(SETUP_FAILED)
            _, status = os.waitpid(init, 0)
            os._exit(_exit_code(status))
        except BaseException:  # noqa: BLE001
            os._exit(SETUP_FAILED)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def preload(threads):
    """Import what every grading needs before forking (torch first; nothing here runs torch code)."""
    import gc
    import importlib

    from autograder.sandbox.inside import worker

    worker.load_runtime(threads)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a library this machine lacks is imported by no notebook either
            pass
    gc.collect()
    gc.freeze()              # a child's garbage collections never touch (and so copy) these objects
    huge_pages()


def huge_pages(minimum=4 << 20):
    """Back the large private memory regions (the heap, mostly torch's) by huge pages where the kernel
    can: every fork then copies a few hundred page-table entries instead of some hundred thousand."""
    lib = libc()
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    huge = 2 << 20
    try:
        with open("/proc/self/maps") as handle:
            lines = handle.readlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        low, high = (int(x, 16) for x in parts[0].split("-"))
        private = parts[1].startswith("rw") and parts[1].endswith("p")
        if private and (len(parts) < 6 or parts[5] == "[heap]") and high - low >= minimum:
            start, end = (low + huge - 1) & ~(huge - 1), high & ~(huge - 1)
            if end > start:
                lib.madvise(start, end - start, MADV_HUGEPAGE)
                lib.madvise(start, end - start, MADV_COLLAPSE)     # Linux 6.1+; elsewhere a no-op


def main():
    sock = socket.socket(fileno=int(sys.argv[1]))
    settings = json.loads(sock.recv(65536).decode())
    disk_bytes = int(settings["disk_bytes"])
    preload(int(settings.get("threads", 1)))
    ok = _self_test(disk_bytes)
    sock.send(json.dumps({"event": "ready", "ok": ok}).encode())
    if not ok:
        return
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    children = {}                   # pidfd -> (request id, pid)
    while True:
        for fd, _ in poller.poll():
            if fd == sock.fileno():
                try:
                    message, fds, _, _ = socket.recv_fds(sock, 65536, 3)
                except OSError:
                    message, fds = b"", []
                request = _parse(message)
                if request is None:
                    for pidfd, (_, pid) in children.items():
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    return
                if request.get("op") == "fork" and len(fds) == 3:
                    pid = os.fork()
                    if pid == 0:
                        _grading(sock, request.get("id"), fds, disk_bytes)
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = (request.get("id"), pid)
                    poller.register(pidfd, select.POLLIN)
                for extra in fds:
                    os.close(extra)
            elif fd in children:
                request_id, pid = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                sock.send(json.dumps({"event": "exit", "id": request_id,
                                      "status": os.waitstatus_to_exitcode(status)}).encode())


def _parse(message):
    if not message:
        return None
    try:
        request = json.loads(message.decode())
    except ValueError:
        return None
    return request if isinstance(request, dict) and request.get("op") != "exit" else None


if __name__ == "__main__":
    main()
