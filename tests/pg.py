"""A real PostgreSQL for tests: Debian's server binaries on a temporary data directory.

The server listens only on a Unix socket in its own temporary directory (no TCP at all), so
clusters of several test runs never meet. `initdb` refuses to run as root: as root the
directories are given to the `postgres` user and the binaries run through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

#: Versions tried, newest first; Debian 12 ships 15.
VERSIONS = ("17", "16", "15", "14", "13")
APP_ROLE = "warroom_app"
DATABASE = "warroom"


def find_bindir() -> Path | None:
    """The newest installed Debian PostgreSQL server `bin/` (with initdb and pg_ctl)."""
    override = os.environ.get("WARROOM_PG_BINDIR")
    candidates = [override] if override else []
    candidates += [f"/usr/lib/postgresql/{v}/bin" for v in VERSIONS]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


class PgServer:
    """One throwaway cluster: `start()`, `stop()`, `restart()`, and URLs to reach it."""

    def __init__(self, bindir: Path, fsync: bool = False) -> None:
        self.bindir = bindir
        #: Off for tests (what they check is the client's side, and the disk is shared);
        #: on for benchmarks.
        self.fsync = fsync
        self.base = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.logfile = self.base / "server.log"
        self.port = 5432  # only names the socket file; the directory is private
        self._runas: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            self._runas = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.base, 0o755)
            self.socket_dir.mkdir()
            self.logfile.touch()
            for path in (self.base, self.socket_dir, self.logfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        else:
            self.socket_dir.mkdir()

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = [*self._runas, str(self.bindir / argv[0]), *argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}\n{tail}")

    def init(self) -> PgServer:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self.start()
        self.psql(f"CREATE ROLE {APP_ROLE} LOGIN")
        self.psql(f"CREATE DATABASE {DATABASE}")
        return self

    def start(self) -> None:
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            f"-c port={self.port} -c max_connections=100 -c shared_buffers=16MB "
            f"-c log_min_messages=warning -c fsync={'on' if self.fsync else 'off'}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-o", options,
                  "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop at once (the data is thrown away: no checkpoint to wait for) and clean up."""
        try:
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
                deadline = time.monotonic() + 10
                while pid_file.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
        except (OSError, ValueError):
            pass
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, incident: str | None = None, user: str = APP_ROLE, db: str = DATABASE) -> str:
        """A `postgresql://` URL over this server's socket (`?incident=` when given)."""
        query = f"host={quote(str(self.socket_dir), safe='')}&port={self.port}"
        if incident is not None:
            query += f"&incident={incident}"
        return f"postgresql://{user}@/{db}?{query}"

    def admin_url(self, incident: str | None = None) -> str:
        return self.url(incident, user="postgres")

    def psql(self, sql: str, db: str = "postgres") -> str:
        done = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", db,
             "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout.strip()
