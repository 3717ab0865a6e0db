"""A real PostgreSQL for the tests (and the benchmark): `initdb` into a temporary directory, `pg_ctl` on loopback.

The server binaries come from Debian's `postgresql` package (`make system-deps`).
PostgreSQL refuses to run as root, so when the tests run as root (CI does) the
cluster belongs to the unprivileged user `nobody` and every server command runs
as that user. Authentication is `trust` on 127.0.0.1 only; the socket
directory is the cluster's own directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.servers import free_port

__all__ = ["PostgresServer", "find_bindir", "postgres_server"]

SKIP_ENV = "GENAI_SRE_SKIP_POSTGRES"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for folder in candidates:
        if os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    """One throw-away cluster. `url(db)` is a psycopg connection URL for database `db`."""

    def __init__(self, bindir: Path, *, fsync: bool = False) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="genai-sre-pg-"))
        self.datadir = self.root / "data"
        self.log = self.root / "server.log"
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        self._fsync = fsync
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 100",
            f"fsync = {'on' if fsync else 'off'}",
            f"synchronous_commit = {'on' if fsync else 'off'}",
            "full_page_writes = off" if not fsync else "full_page_writes = on",
        ]
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as fh:  # owner kept: appended
            fh.write("\n".join(settings) + "\n")
        self.start()

    def _run(self, tool: str, *args: str) -> str:
        exe = str(self.bindir / tool)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        proc = subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=120,
            **self._user,
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{log}")
        return proc.stdout

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60", "start")
        self._wait_ready()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(fsync: bool = False) -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql (make system-deps)")
    server = PostgresServer(bindir, fsync=fsync)
    try:
        yield server
    finally:
        server.close()
