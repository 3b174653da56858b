"""The system calls a grading process may not make: a seccomp filter, loaded before any student code runs.

Runs inside the sandbox (staged with the worker). Modelled on Docker's default profile: the process keeps
everything a notebook needs (files, threads, forks, memory, pipes) and loses what reaches beyond its own
process: other processes' memory, the kernel's keyrings, new namespaces, mounts, kernel modules, the
clock, io_uring, userfaultfd, eBPF and perf events. A denied call fails with EPERM (``clone3``, whose flags a
filter cannot read, with ENOSYS, so the C library falls back to ``clone``). The filter is inherited by
every process and thread the student's code starts and cannot be removed (no_new_privs is set with it).

Built on libseccomp (through ``pyseccomp``, its ctypes binding; else Debian's ``seccomp`` module).
"""
import errno

# Denied outright (EPERM). Each line: the calls, and what they would reach.
DENIED = (
    # other processes and the kernel's shared state
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",   # another process's memory
    "keyctl", "add_key", "request_key",                                         # per-user keyrings
    "userfaultfd", "perf_event_open", "bpf",                                    # kernel attack surface
    "io_uring_setup", "io_uring_enter", "io_uring_register",                    # bypasses this filter
    # namespaces and mounts: the box's layout is fixed before the notebook runs
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "name_to_handle_at", "open_by_handle_at",
    # the machine itself
    "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "lookup_dcookie", "uselib", "ustat", "sysfs",
    "vhangup", "nfsservctl", "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module", "_sysctl",
)

# clone() flags that make new namespaces (x86-64 and arm64 pass the flags in the first argument).
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080,
}

# personality() bits that weaken the process's own defences (address randomisation, executable data).
PERSONALITY_FLAGS = {"ADDR_NO_RANDOMIZE": 0x0040000, "READ_IMPLIES_EXEC": 0x0400000,
                     "MMAP_PAGE_ZERO": 0x0100000}
PERSONALITY_QUERY = 0xFFFFFFFF


def _binding():
    try:
        import pyseccomp as binding
    except (ImportError, OSError):
        import seccomp as binding          # Debian's python3-seccomp
    return binding


def available():
    """Whether a seccomp filter can be built here (libseccomp and a binding present)."""
    try:
        _binding()
    except (ImportError, OSError):
        return False
    return True


def build():
    """The filter: default allow, every call above denied."""
    sc = _binding()
    denied = sc.ERRNO(errno.EPERM)
    syscall_filter = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        try:
            syscall_filter.add_rule(denied, name)
        except (ValueError, RuntimeError, OSError):
            pass                          # not a call of this architecture
    for flag in NAMESPACE_FLAGS.values():
        syscall_filter.add_rule(denied, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for flag in PERSONALITY_FLAGS.values():
        # bit set, and not the query 0xffffffff (which has every bit set and changes nothing)
        syscall_filter.add_rule(denied, "personality", sc.Arg(0, sc.MASKED_EQ, flag | 0x80000000, flag))
    try:
        syscall_filter.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    except (ValueError, RuntimeError, OSError):
        pass
    return syscall_filter


def install():
    """Load the filter into this process (and so every process it starts). Raises OSError if it cannot."""
    try:
        syscall_filter = build()
    except (ImportError, AttributeError) as exc:
        raise OSError(f"seccomp is not available here: {exc}") from None
    syscall_filter.load()
