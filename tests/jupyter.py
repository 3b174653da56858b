"""Test helper: a Jupyter server (JupyterLab or a plain server) on 127.0.0.1 for one test, stopped however the
test ends."""
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

STARTUP_S = 120          # generous: the machine may be busy with other tests


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(app, folder, env, log, *options):
    """Run ``jupyter APP`` ("lab" or "server") in ``folder`` with ``env`` and ``options``, its output in ``log``,
    until it answers ``/api/status``; yields (base url, token). Terminated at the end (its kernels with it)."""
    port, token = free_port(), secrets.token_hex(24)
    command = [sys.executable, "-m", "jupyter", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", *options]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    with open(log, "w") as handle:
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, f"jupyter {app} exited at start-up:\n{open(log).read()[-3000:]}"
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, f"jupyter {app} did not answer in {STARTUP_S} s"
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
