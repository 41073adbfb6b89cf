"""A PostgreSQL server of its own, on a free loopback port, for tests that restart the database under load.

The local server on 127.0.0.1:5432 serves every other test (and other people's runs on the same machine):
it is never restarted. This one is made with Debian's binaries (``initdb`` into a fresh folder, ``pg_ctl``
on a free port, trust authentication for ``postgres`` on loopback), restarted as an operator would restart
it (``pg_ctl restart -m fast``: every session ended, the server back a moment later), and removed at the end.
As root (CI) it runs as the ``postgres`` system user the Debian package creates: the server refuses root.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from helpdesk_common.testing import MigratedDatabases


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def binaries():
    """The folder of the newest PostgreSQL installed (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[-3]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return os.path.dirname(found[-1])


class PostgresServer:
    """``start()``, ``restart()``, ``stop()``; ``databases`` hands out migrated databases on it (a
    :class:`helpdesk_common.testing.MigratedDatabases` of its own)."""

    def __init__(self, prefix="helpdesk-pg-"):
        # Not under pytest's temporary folder: as root that is a private folder the server's user cannot enter.
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.bin = binaries()
        self.account = pwd.getpwnam("postgres") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self.databases = MigratedDatabases(admin_dsn=self.admin_dsn, url_prefix=self.url_prefix)

    @property
    def admin_dsn(self):
        return f"dbname=postgres user=postgres host=127.0.0.1 port={self.port}"

    @property
    def url_prefix(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/"

    def _run(self, *argv, timeout=120):
        command = [os.path.join(self.bin, argv[0]), *argv[1:]]
        if os.getuid() == 0:
            command = ["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}",
                       "--clear-groups", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.stdout}{result.stderr}\n{self.log()}")
        return result.stdout

    def _pg_ctl(self, action, *extra):
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   # the whole platform's pools, reconnecting after a restart, and the soak's own sessions
                   "-c max_connections=400")
        return self._run("pg_ctl", action, "-D", self.data, "-l", os.path.join(self.root, "server.log"), "-w",
                         "-t", "120", "-o", options, *extra)

    def start(self):
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        self._pg_ctl("start")
        return self

    def restart(self):
        """Stop (fast: every session ended, a checkpoint written) and start again; returns when it accepts."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")
            except RuntimeError:
                pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.root, "server.log"), errors="replace") as stream:
                return stream.read()[-3000:]
        except OSError:
            return "(no log)"

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
