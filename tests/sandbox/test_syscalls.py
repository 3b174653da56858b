"""The seccomp filter: every denied call fails inside a grading, in every tier, and nothing a notebook needs does.

Calls are made through libc's ``syscall()`` by number (x86-64), from the notebook's process (a probe) and from
a process it forks; the probe returns the errno of each, and the test decides.
"""
import platform

import pytest

from autograder.sandbox import isolation
from autograder.sandbox.inside import syscalls
from autograder.sandbox.student import Limits, SandboxStudent

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or not syscalls.available(),
                                reason="x86-64 syscall numbers; libseccomp needed")

# x86-64 numbers, and the arguments that make each call do something real if it were allowed.
CALLS = {
    "ptrace": (101, 16, 1, 0, 0),                   # PTRACE_ATTACH to the namespace's init
    "process_vm_readv": (310, 1, 0, 0, 0, 0, 0),
    "keyctl": (250, 0, -3, 0),                      # KEYCTL_GET_KEYRING_ID of the user keyring
    "add_key": (248, 0, 0, 0, 0, -4),
    "request_key": (249, 0, 0, 0, -4),
    "userfaultfd": (323, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "bpf": (321, 0, 0, 0),
    "io_uring_setup": (425, 1, 0),
    "unshare_user": (272, 0x10000000),
    "unshare_net": (272, 0x40000000),
    "setns": (308, 0, 0),
    "mount": (165, 0, 0, 0, 0, 0),
    "pivot_root": (155, 0, 0),
    "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0),   # flags | SIGCHLD
    "kexec_load": (246, 0, 0, 0, 0),
    "init_module": (175, 0, 0, 0),
    "settimeofday": (164, 0, 0),
    "personality_no_aslr": (135, 0x0040000),
}
NEEDED = {"getpid": (39,), "personality_query": (135, 0xFFFFFFFF)}


def _syscall_probe(ns, calls, in_child):
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def run():
        out = {}
        for name, (number, *args) in calls.items():
            ctypes.set_errno(0)
            result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
            out[name] = [int(result), ctypes.get_errno()]
            if result >= 0 and name.startswith("clone"):
                if result == 0:
                    os._exit(0)
                os.waitpid(result, 0)
        return out

    if not in_child:
        return run()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, repr(run()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    import ast
    return ast.literal_eval(os.read(read, 65536).decode())


def _tiers():
    tiers = ["user"]
    if isolation.bwrap_works():
        tiers += ["bwrap-warm", "bwrap-cold"]
    return tiers


@pytest.mark.parametrize("tier", _tiers())
def test_denied_calls_fail_with_eperm_and_needed_ones_work(tier):
    limits = Limits(isolation="bwrap" if tier.startswith("bwrap") else "user", warm=tier == "bwrap-warm",
                    cell_timeout=20, startup_timeout=240)
    student = SandboxStudent([(1, "x = 1")], limits)
    student.start()
    try:
        results = [student.probe(_syscall_probe, {**CALLS, **NEEDED}, in_child) for in_child in (False, True)]
        assert "seccomp filter" in " ".join(student.protections)
    finally:
        student.close()
    for out in results:
        allowed = {name: value for name, value in out.items() if name in CALLS and value != [-1, 1]}
        assert not allowed, f"{tier}: not denied with EPERM: {allowed}"
        assert out["getpid"][0] > 0 and out["personality_query"][0] >= 0, out


def _keyring_probe(ns, payload):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    payload = payload.encode()
    # add_key("user", "classmates", payload, len, KEY_SPEC_USER_KEYRING), then search it back
    added = libc.syscall(ctypes.c_long(248), b"user", b"classmates", payload, ctypes.c_size_t(len(payload)),
                         ctypes.c_long(-4))
    found = libc.syscall(ctypes.c_long(250), ctypes.c_long(10), ctypes.c_long(-4), b"user", b"classmates",
                         ctypes.c_long(0))      # KEYCTL_SEARCH
    return [int(added), int(found), ctypes.get_errno()]


def test_two_gradings_from_one_warm_box_share_no_keyring():
    if not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here")
    limits = Limits(isolation="bwrap", warm=True, cell_timeout=20, startup_timeout=240)
    seen = []
    for payload in ("the stand-ins of grading one", ""):
        student = SandboxStudent([(1, "x = 1")], limits)
        student.start()
        try:
            seen.append(student.probe(_keyring_probe, payload))
        finally:
            student.close()
    assert seen[0][0] == -1 and seen[0][2] == 1, f"the first grading stored a key: {seen[0]}"
    assert seen[1][1] == -1, f"the second grading found the first one's key: {seen[1]}"
