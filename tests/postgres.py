"""A throw-away PostgreSQL cluster for the tests: initdb in a temporary folder, a server on 127.0.0.1 only (its
socket in that folder too), a password of its own, one new database per test module, and everything stopped
and removed at the end, also when the test process dies first (the server's parent shell waits for that).

PostgreSQL refuses to run as root: as root, its programs run as the ``postgres`` user (Debian's package makes it).
"""
import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

SKIP_REASON = ("PostgreSQL's initdb was not found (on PATH or in /usr/lib/postgresql/*/bin): install Debian's "
               "postgresql package (setup.sh does) to run these tests against PostgreSQL too")
USER = "course"
SETTINGS = {"listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
            "full_page_writes": "off", "max_connections": "60", "shared_buffers": "32MB"}


def programs():
    """The folder of PostgreSQL's programs (initdb, pg_ctl), or None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return os.path.dirname(installed[-1]) if installed else None


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A PostgreSQL server of its own in a temporary folder; ``database()`` gives a new database's URL."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.folder = tempfile.mkdtemp(prefix="pg-")
        self.data = os.path.join(self.folder, "data")
        self.password = secrets.token_hex(16)
        self.port = _free_port()
        self.count = 0
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._server = None
        try:
            self._initdb()
            self._server = self._start()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _run(self, program, *args):
        """Run one of PostgreSQL's programs as the cluster's owner; its output goes into the error, if any."""
        proc = subprocess.run(self._as + [os.path.join(self.bindir, program), *args], cwd=self.folder,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    def _start(self):
        """The server, a child of a shell that stops it and removes the folder once this process's end of a pipe
        closes: at ``stop()``, or when the test process dies without stopping it."""
        server = shlex.join(self._as + [os.path.join(self.bindir, "postgres"), "-D", self.data, "-p", str(self.port),
                                        "-k", self.folder] + [f"-c{name}={value}" for name, value in SETTINGS.items()])
        stop = shlex.join(self._as + [os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.data, "-m",
                                      "immediate", "-s"])
        script = f'{server} >"$0/server.log" 2>&1 & read -r _; {stop} >/dev/null 2>&1; wait; rm -rf "$0"'
        return subprocess.Popen(["sh", "-c", script, self.folder], stdin=subprocess.PIPE, cwd="/",
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _wait_until_ready(self, patience=60):
        """Return once the server takes connections; its log in the error if it does not."""
        import psycopg

        deadline = time.monotonic() + patience
        while True:
            try:
                psycopg.connect(self.url("postgres", driver="postgresql"), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self._server.poll() is not None or "FATAL" in self.log():
                    raise RuntimeError("PostgreSQL did not start: " + self.log()) from None
                time.sleep(0.1)

    def log(self):
        """The end of the server's log."""
        try:
            with open(os.path.join(self.folder, "server.log")) as handle:
                return handle.read()[-3000:]
        except OSError:
            return "(no log)"

    def _initdb(self):
        """A new cluster whose only user is USER, with a password (SCRAM), its files owned by whoever runs it."""
        password_file = os.path.join(self.folder, "password")
        with open(password_file, "w") as handle:
            handle.write(self.password)
        if self._as:
            owner = pwd.getpwnam("postgres")
            for path in (self.folder, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", self.data, "-U", USER, f"--pwfile={password_file}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        os.remove(password_file)

    def url(self, database, driver="postgresql+psycopg"):
        """The SQLAlchemy URL of ``database`` in this cluster."""
        return f"{driver}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self):
        """A new, empty database's URL."""
        import psycopg

        self.count += 1
        name = f"test{self.count}"
        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self):
        """Stop the server (immediately: nothing in it is kept) and remove its folder."""
        if self._server is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif self._server.poll() is None:
            self._server.stdin.close()
            self._server.wait(timeout=120)
