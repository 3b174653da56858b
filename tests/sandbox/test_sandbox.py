"""The sandbox tiers: what the student's process sees and can do, the fallback user tier, refusal, unsafe mode.

bubblewrap is the tier used here (root, Debian's bwrap); the unprivileged-user tier is forced with
``Limits(isolation="user")``; refusal is shown by making both unavailable.
"""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from autograder.sandbox import isolation
from autograder.judge.notebook import program_cells
from autograder.sandbox.child import Output
from autograder.sandbox.student import Limits, SandboxStudent
from tests.hostile import ATTACKS, grading_uid, leftover_processes, stray_files
from tests.notebooks import ROOT, append_cell, grade, notebook_path, release_notebook, source_notebook

A = "01-datasets"
LIMITS = Limits(cell_timeout=20, call_timeout=60, startup_timeout=240)


def _view_probe(ns, paths):
    import importlib
    import os
    out = {"exists": {p: os.path.exists(p) for p in paths}, "uid": os.getuid(), "cwd": os.getcwd()}
    for module in ("course.datasets", "course.trainer", "course.training", "course.tensorboard", "course.data"):
        try:
            importlib.import_module(module)
            out[module] = "ok"
        except ImportError as exc:
            out[module] = str(exc)
    try:
        with open(os.path.join(os.path.dirname(os.__file__), "os.py"), "a"):
            out["runtime_writable"] = True
    except OSError:
        out["runtime_writable"] = False
    return out


SECRETS = [os.path.join(ROOT, "source"), os.path.join(ROOT, "autograder", "graders"),
           os.path.join(os.path.dirname(ROOT), "shared", "data"), "/usr/share/datasets/fashion-mnist",
           os.path.join(ROOT, "data")]


def test_bwrap_is_the_tier_here_and_hides_everything_but_the_runtime():
    if not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here (setup.sh installs it)")
    student = SandboxStudent(program_cells(source_notebook("02-tensorboard")), LIMITS, assignment="02-tensorboard")
    student.start()
    try:
        out = student.probe(_view_probe, SECRETS)
    finally:
        student.close()
    assert student.box.tier == "bwrap"
    assert not any(out["exists"].values()), out["exists"]
    assert out["uid"] == 65534 and out["cwd"] == isolation.SANDBOX_HOME
    assert out["runtime_writable"] is False
    assert out["course.datasets"] == "ok"                      # an earlier lesson's finished code
    assert out["course.trainer"] == "ok"                       # the course's trainer, a tool of 02-05
    assert "holds the answers of 06-mlp-gpu" in out["course.training"]     # 06's device-side loop
    assert "not available while 02-tensorboard is graded" in out["course.tensorboard"]


def test_a_lessons_own_answers_cannot_be_imported_or_bound():
    nb = append_cell(release_notebook(A), "from course.datasets import *", index=3)
    report = grade(nb, limits=LIMITS)
    assert report.score == 0
    assert any("not available while 01-datasets is graded" in m for m in report.messages)


def test_user_tier_grades_and_contains_attacks():
    if os.geteuid() != 0 or not isolation.runtime_readable():
        pytest.skip("the user tier needs root and a runtime readable by other users (setup.sh)")
    limits = Limits(cell_timeout=20, call_timeout=60, startup_timeout=240, isolation="user")
    report = grade(source_notebook(A), limits=limits)
    assert report.score == 13, report.table()
    assert any("unprivileged user" in line for line in report.sandbox)
    # The attacks that only write or import share one notebook (a cell each); those that leave processes running
    # or kill them have one each.
    groups = [("edit_engine_and_graders", "pth_in_venv", "walk_and_write_everywhere", "import_the_lesson_answers"),
              ("setsid_daemon_rewrites_results",), ("fork_bomb",), ("kill_everything",)]
    for group in groups:
        nb, name = release_notebook(A), "+".join(group)
        for index, attack in enumerate(group):
            nb = append_cell(nb, ATTACKS[attack], index=3 + index)
        report = grade(nb, limits=limits)
        uid = grading_uid(report)
        assert report.error is None and report.score == 0, (name, report.table())
        assert uid is not None and not leftover_processes(uid), name
        assert not stray_files(uid), (name, stray_files(uid)[:5])


def test_a_notebook_that_uses_up_the_process_limit_is_told_so():
    """Processes the notebook left running use up the limit: each check says so at once (no restarts)."""
    report = grade(append_cell(release_notebook(A), ATTACKS["fork_bomb"], index=3), limits=LIMITS)
    assert report.error is None and report.score == 0
    feedback = [line for task in report.tasks for line in task.feedback]
    assert any("use up the process limit" in line for line in feedback), feedback
    assert not any("too many times" in line for line in feedback), feedback


def test_no_sandbox_means_refusal_naming_the_fix(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_works", lambda as_uid=None: False)
    monkeypatch.setattr(isolation, "runtime_readable", lambda: False)
    report = grade(source_notebook(A), limits=LIMITS)
    assert report.score == 0 and report.error.startswith("Grading refused")
    assert "apt-get install bubblewrap" in report.error and "--unsafe-no-sandbox" in report.error


def test_unsafe_mode_only_on_request_and_says_so(tmp_path):
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", notebook_path(A), "--results", str(results),
                           "--unsafe-no-sandbox"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(results.read_text())
    assert data["score"] == 13
    assert "WITHOUT a sandbox" in data["output"]
    assert "NO SANDBOX" in proc.stderr


def test_cli_lists_the_protections_in_force(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", notebook_path(A, "release"), "--results",
                           str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0
    for words in ("sandbox:", "network:", "processes:", "memory:", "time:"):
        assert words in proc.stderr


def test_output_is_bounded():
    read, write = os.pipe()
    reader = os.fdopen(read, "rb")
    output = Output(reader, limit=1000)
    with os.fdopen(write, "wb") as writer:
        for _ in range(200):
            writer.write(b"x" * 999 + b"\n")
    output.thread.join(timeout=10)
    assert output.total == 200 * 1000
    assert output.size <= 2000 and output.last_line() == "x" * 196 + " ..."


def test_a_sandbox_that_cannot_start_is_a_fault_of_the_machine_not_of_the_student(monkeypatch):
    monkeypatch.setattr(isolation.Box, "command",
                        lambda self, argv, capabilities=False: ["/bin/sh", "-c", "echo runtime missing; exit 3"])
    report = grade(source_notebook(A), limits=dataclasses.replace(LIMITS, warm=False))
    assert report.error and "fault of the grading machine" in report.error and "runtime missing" in report.error
    assert report.score == 0


def test_a_warm_sandbox_that_cannot_start_means_cold_starts_not_lost_points(monkeypatch):
    real = isolation.Box.command

    def no_warm(self, argv, capabilities=False):
        return ["/bin/sh", "-c", "exit 3"] if capabilities else real(self, argv)

    monkeypatch.setattr(isolation.Box, "command", no_warm)
    limits = dataclasses.replace(LIMITS, disk_bytes=LIMITS.disk_bytes + 2**20)   # a warm-box key no other test uses
    report = grade(source_notebook(A), limits=limits)
    assert report.error is None and report.score == 13, report.table()
    assert not any(line.startswith("start: forked") for line in report.sandbox)


LEAVE_TRACES = """
import ctypes, os, socket, subprocess, sys
for path in ('/tmp/PWNED-warm', os.path.expanduser('~/PWNED-warm'), '/dev/shm/PWNED-warm'):
    with open(path, 'w') as handle:
        handle.write('secret answers')
libc = ctypes.CDLL(None, use_errno=True)
shm_id = libc.shmget(0x5057, 4096, 0o1666)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind('\\0PWNED-warm')
listener.listen(1)
sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'], start_new_session=True)
WARM_PID = os.getpid()
"""


def _traces_probe(ns):
    import ctypes
    import os
    import socket
    found = [p for p in ('/tmp/PWNED-warm', os.path.expanduser('~/PWNED-warm'), '/dev/shm/PWNED-warm')
             if os.path.exists(p)]
    if ctypes.CDLL(None, use_errno=True).shmget(0x5057, 0, 0) != -1:
        found.append("SysV shared memory")
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect('\0PWNED-warm')
        found.append("abstract socket")
    except OSError:
        pass
    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
    with open('/proc/self/status') as handle:
        caps = [line.split()[1] for line in handle if line.startswith(('CapEff', 'CapBnd', 'CapPrm'))]
    writable = []
    for folder in ('/', '/dev', '/opt/grading/lib', '/etc'):
        try:
            open(os.path.join(folder, 'PWNED'), 'w').close()
            writable.append(folder)
        except OSError:
            pass
    return {"found": found, "pids": pids, "caps": caps, "writable": writable}


def test_gradings_forked_from_one_warm_sandbox_share_nothing():
    """Files in every scratch folder, SysV memory, an abstract socket and a background process left by one
    grading: the next grading forked from the same warm sandbox sees none of them, and the process is gone."""
    if not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here (setup.sh installs it)")
    from autograder.sandbox import warm

    first = SandboxStudent([(0, LEAVE_TRACES)], LIMITS, assignment=A)
    first.start()
    assert first.warm is not None
    box = first.warm
    before = first.probe(_traces_probe)
    assert len(before["found"]) == 5, before            # the traces exist while their grading runs
    first.close()
    uid = box.box.uid
    assert not leftover_processes(uid), leftover_processes(uid)
    second = SandboxStudent([(0, "x = 1")], LIMITS, assignment=A)
    second.start()
    try:
        assert second.warm is box                       # the same warm sandbox served both
        after = second.probe(_traces_probe)
    finally:
        second.close()
    assert after["found"] == [], after["found"]
    assert after["pids"] == [1, 2, 3], after["pids"]     # its init, itself, the probe: nothing else is visible
    assert set(after["caps"]) == {"0000000000000000"}, after["caps"]
    assert after["writable"] == [], after["writable"]
    assert box in [b for group in warm._idle.values() for b in group]


def test_gradings_that_differ_only_in_time_limits_share_a_warm_box():
    """A warm box is keyed by the limits it is made with (cgroups, tmpfs, threads): a grading with other time
    limits forks from the same box, and its report states its own time limits; another box limit, another box."""
    from autograder.sandbox import warm

    per_grading = {"call_timeout", "cell_timeout", "startup_timeout", "grading_budget", "output_bytes", "file_bytes",
                   "max_restarts", "isolation", "warm", "drop_user"}
    fields = {f.name for f in dataclasses.fields(Limits)}
    assert fields == per_grading | set(warm.BOX_LIMITS), "a new limit: say whether it shapes the warm box"
    for name in warm.BOX_LIMITS:
        other = dataclasses.replace(LIMITS, **{name: getattr(LIMITS, name) * 2})
        assert warm.pool_key(A, other) != warm.pool_key(A, LIMITS), name
    first = SandboxStudent([(0, "x = 1")], LIMITS, assignment=A)
    first.start()
    box = first.warm
    first.close()
    faster = dataclasses.replace(LIMITS, cell_timeout=7, call_timeout=11, grading_budget=13)
    second = SandboxStudent([(0, "x = 1")], faster, assignment=A)
    second.start()
    try:
        assert box is not None and second.warm is box
        assert "time: 7 s per cell, 11 s per check, 13 s for all checks, enforced by killing" in second.protections
    finally:
        second.close()


def _burn_probe(ns, workers, seconds):
    """Start ``workers`` busy processes for ``seconds`` of wall time; return (wall, CPU seconds they used)."""
    import os
    import time

    start = time.monotonic()
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() - start < seconds:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return [time.monotonic() - start, os.times().children_user + os.times().children_system]


@pytest.mark.parametrize("tier", ["bwrap", "user"])
def test_a_box_uses_at_most_its_cpu_quota_however_many_processes_it_starts(tier):
    if tier == "bwrap" and not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here")
    # A quarter of a CPU from the start: the runtime's own start (torch's import, cold in the user tier) takes
    # four times as long, so the first cell may take longer to begin than LIMITS allows on a busy machine.
    limits = dataclasses.replace(LIMITS, isolation=tier, cpus=0.25, cell_timeout=120)
    student = SandboxStudent([(1, "x = 1")], limits)
    student.start()
    try:
        if student.box.cgroups is None or not student.box.cgroups.limits_cpu:
            pytest.skip("no writable cpu cgroup here")
        wall, cpu = student.probe(_burn_probe, 4, 2.0)
    finally:
        student.close()
    # 4 busy processes for 2 s use up to 2 CPU-seconds per core of the machine; the quota allows 0.25 CPU.
    assert cpu <= 0.25 * wall * 1.3 + 0.1, (wall, cpu)


def probe_in_a_box(tier, probe, *args):
    """Start a one-line notebook in a box of the isolation ``tier``, run ``probe`` once, close the box."""
    student = SandboxStudent([(1, "x = 1")], dataclasses.replace(LIMITS, isolation=tier))
    student.start()
    try:
        return student.probe(probe, *args)
    finally:
        student.close()


def _listing_probe(ns, paths):
    import os
    out = {}
    for path in paths:
        if os.path.isdir(path):
            out[path] = sorted(os.listdir(path))
        elif os.path.exists(path):
            with open(path) as handle:
                out[path] = handle.read()[:100]
    return out


def test_installed_project_packages_are_found_however_installed(tmp_path, monkeypatch):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for folder in ("course", "autograder/graders", "numpy", "pytorch_autograded_course-0.1.0.dist-info",
                   "other-1.0.dist-info"):
        (site / folder).mkdir(parents=True)
    (site / "course" / "linear_regression.py").write_text("def sgd(): pass\n")
    (site / "pytorch_autograded_course-0.1.0.dist-info" / "top_level.txt").write_text("autograder\ncourse\n")
    (site / "other-1.0.dist-info" / "top_level.txt").write_text("other\n")
    (site / "course-checkout.pth").write_text(isolation.ROOT + "\n")
    (site / "distutils-precedence.pth").write_text("import os\n")
    monkeypatch.setattr(isolation, "runtime_paths", lambda: [str(tmp_path)])
    hidden = {os.path.basename(p) for p in isolation.installed_project()}
    assert hidden == {"course", "autograder", "pytorch_autograded_course-0.1.0.dist-info", "course-checkout.pth"}


def test_the_box_shows_nothing_of_the_installed_project():
    if not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here")
    installed = isolation.installed_project()
    assert installed, "setup.sh installs the project (editable): its hooks are in site-packages"
    seen = probe_in_a_box("bwrap", _listing_probe, installed)
    assert all(value in ([], "") for value in seen.values()), seen


def _read_probe(ns, paths):
    out = {}
    for path in paths:
        try:
            with open(path) as handle:
                out[path] = handle.read(20)
        except OSError as exc:
            out[path] = type(exc).__name__
    return out


def test_user_tier_reads_no_classmate_even_where_files_are_world_readable():
    import pathlib
    import shutil
    import tempfile

    from autograder.sandbox.inside import landlock
    if os.geteuid() != 0 or landlock.abi() < 1:
        pytest.skip("the user tier needs root; Landlock needs Linux 5.13+")
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="class-"))      # under /tmp, which every user can traverse
    classmates = tmp_path / "submitted" / "alice"
    classmates.mkdir(parents=True)
    notebook = classmates / "datasets.ipynb"
    notebook.write_text("alice's answers")
    for path in (tmp_path, tmp_path / "submitted", classmates):
        os.chmod(path, 0o755)
    os.chmod(notebook, 0o644)
    targets = [str(notebook), os.path.join(ROOT, "README.md"), "/etc/hostname"]
    try:
        seen = probe_in_a_box("user", _read_probe, targets)
    finally:
        shutil.rmtree(tmp_path)
    assert seen[str(notebook)] == "PermissionError" and seen[targets[1]] == "PermissionError", seen
    assert seen["/etc/hostname"] != "PermissionError"       # the system's own files stay readable


def _init_probe(ns):
    out = {}
    for name in ("mem", "environ", "maps"):
        try:
            with open(f"/proc/1/{name}", "rb") as handle:
                out[name] = len(handle.read(64))
        except OSError as exc:
            out[name] = type(exc).__name__
    return out


def test_a_warm_grading_cannot_read_its_namespace_init():
    if not isolation.bwrap_works():
        pytest.skip("bubblewrap cannot start here")
    student = SandboxStudent([(1, "x = 1")], dataclasses.replace(LIMITS, isolation="bwrap", warm=True))
    student.start()
    try:
        seen = student.probe(_init_probe)
        assert student.warm is not None, "no warm sandbox started here"
    finally:
        student.close()
    assert set(seen.values()) == {"PermissionError"}, seen
