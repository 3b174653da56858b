"""Which files a grading process may open: a Landlock rule set, for the tier without a mount namespace.

Runs inside the student's process (staged with the worker). In the ``user`` tier the process runs as a
grading uid on the host's file system, where world-readable files (a class's submissions, a checkout, data
sets) would otherwise be open to it. Before any student code runs, the worker restricts itself, and so
every process it starts, to an allow-list: read (and execute) the runtime, the system's libraries and the
staged course library; read and write its own working folder. Everything else fails with EACCES, whatever
the file's permissions and however its path was learnt. Needs Linux 5.13+ (Landlock); the judge asks for it
only where the kernel has it (``abi()``).
"""
import ctypes
import os

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446      # the same on every architecture
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14            # ABI 2, ABI 3

READ = EXECUTE | READ_FILE | READ_DIR


def _all_rights(abi):
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi():
    """The kernel's Landlock ABI version, or 0 where Landlock is missing or disabled."""
    result = _libc().syscall(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                             ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(result))


def restrict(read=(), write=()):
    """Allow only ``read`` paths (read, list, execute) and ``write`` paths (everything) from now on."""
    version = abi()
    if version < 1:
        raise OSError("Landlock is not available in this kernel")
    libc = _libc()
    handled = _all_rights(min(version, 3))
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, rights in ((read, READ), (write, handled)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue                       # a path this machine lacks
                try:
                    allowed = rights if os.path.isdir(path) else rights & ~(READ_DIR | MAKE_DIR | REMOVE_DIR |
                                                                            REMOVE_FILE | MAKE_REG | MAKE_SYM |
                                                                            MAKE_SOCK | MAKE_FIFO | MAKE_CHAR |
                                                                            MAKE_BLOCK | REFER)
                    rule = _PathBeneath(allowed & handled, fd)
                    if libc.syscall(ctypes.c_long(SYS_ADD_RULE), ctypes.c_int(ruleset),
                                    ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
                finally:
                    os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if libc.syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def system_reads(hidden=("/usr/share/datasets",)):
    """The system folders a Python process with torch needs to read: /usr (less the hidden folders), /etc,
    the library folders, /proc and /sys, and the harmless devices."""
    paths = []

    def below(folder, skip):
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            path = os.path.join(folder, name)
            if any(path == h or h.startswith(path + os.sep) for h in skip):
                if path not in skip:
                    below(path, skip)
                continue
            paths.append(path)

    below("/usr", hidden)
    for path in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/sys",
                 "/dev/urandom", "/dev/random", "/dev/zero"):
        if os.path.exists(path):
            paths.append(os.path.realpath(path) if os.path.islink(path) else path)
    return sorted(set(paths))
