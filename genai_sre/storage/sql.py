"""Two SQL engines behind one small interface: SQLite (embedded, the default) and PostgreSQL (shared).

A store writes its SQL once, with `?` placeholders, against `Tx` (`execute`,
`one`, `all`); the PostgreSQL engine turns `?` into psycopg's `%s`. Every
write is one transaction from `Database.write()`, and writes are serialised:
SQLite by `BEGIN IMMEDIATE` (one writer per file), PostgreSQL by a
transaction-level advisory lock, so several processes on one database see the
same order of changes. Reads (`Database.read()`) never wait for writers.

Waiting is bounded everywhere: SQLite's busy timeout is a fraction of a second
(`busy_timeout_s`), a PostgreSQL connection is waited for `wait_s` at most,
and lock and statement timeouts are set on every connection. A database that
is locked or unreachable raises `StorageUnavailable` (a `StorageError`), which
the admin API answers with 503 so callers retry; nothing blocks for long.

SQLite files are created mode 0600 in a data directory created mode 0700.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from genai_sre.errors import StorageError, StorageUnavailable

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = [
    "Database",
    "PostgresDatabase",
    "SQLiteDatabase",
    "Tx",
    "is_postgres_url",
    "redact_url",
    "secure_data_dir",
    "secure_file",
]

logger = logging.getLogger(__name__)

Engine = Literal["sqlite", "postgresql"]

# Advisory lock keys (any 64-bit number unique to genai-sre on a shared database).
WRITE_LOCK_KEY = 0x67656E6169737265  # "genaisre"
MIGRATE_LOCK_KEY = WRITE_LOCK_KEY + 1


class Tx(Protocol):
    """One connection inside a transaction (write) or in autocommit (read)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None: ...

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class Database(Protocol):
    engine: Engine
    description: str  # for messages: the file, or the URL without its password

    def write(self) -> contextlib.AbstractContextManager[Tx]: ...

    def read(self) -> contextlib.AbstractContextManager[Tx]: ...

    def migrate(self, store: str, migrations: Sequence[str]) -> int: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """The URL without its password (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable database URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def secure_data_dir(path: Path) -> None:
    """Create the data directory mode 0700 (and tighten one of ours that is wider)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            with contextlib.suppress(OSError):  # a mounted volume may not allow it: leave it
                path.chmod(0o700)
    except OSError as exc:
        raise StorageError(f"cannot create data directory {str(path)!r}: {exc}") from exc


def secure_file(path: Path) -> None:
    """Create `path` mode 0600 if it does not exist; tighten it if it is ours and wider."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            st = os.fstat(fd)
            if st.st_uid == os.geteuid() and st.st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot create database file {str(path)!r}: {exc}") from exc


def _refuse_newer(description: str, store: str, version: int, target: int) -> None:
    """A database migrated by a newer genai-sre is left alone: downgrading it would lose data."""
    if version > target:
        raise StorageError(
            f"{description}: {store} schema version {version} is newer than this genai-sre knows "
            f"({target}); upgrade genai-sre"
        )


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# -- SQLite ------------------------------------------------------------------------------------------


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(args)).rowcount

    def one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        # fetchall: a statement left with rows unread (INSERT ... RETURNING) would block the COMMIT
        rows = self._conn.execute(sql, tuple(args)).fetchall()
        return dict(rows[0]) if rows else None

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute(sql, tuple(args)).fetchall()]


class SQLiteDatabase:
    """A SQLite file in WAL mode with a few connections; one writer at a time, bounded waits.

    `busy_timeout_s` is how long a statement waits for another process's write
    lock; `wait_s` how long a thread of this process waits for its turn to
    write (writers of one process queue on a lock rather than spinning on the
    file). The schema version is `PRAGMA user_version`.
    """

    engine: Engine = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 0.25,
        wait_s: float = 2.0,
        max_connections: int = 4,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        self._busy_timeout_s = busy_timeout_s
        self._wait_s = wait_s
        self._synchronous = synchronous
        self._write_lock = threading.Lock()
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False
        secure_data_dir(self.path.parent)
        secure_file(self.path)
        with self._connection() as conn:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as exc:
                raise self._error(exc, "open") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_s
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        with self._guard:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StorageError(f"incident database {self.description!r} is closed")
        if not self._slots.acquire(timeout=self._wait_s):
            raise StorageUnavailable(f"incident database {self.description!r}: every connection is busy")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            finally:
                if conn.in_transaction:  # an error left it half-way: never hand it on like that
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                self._idle.put(conn)
        finally:
            self._slots.release()

    def _error(self, exc: sqlite3.Error, doing: str) -> StorageError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StorageUnavailable(
                f"incident database {self.description!r} is locked by another process (waited "
                f"{self._busy_timeout_s:g}s): {text}"
            )
        if isinstance(exc, sqlite3.OperationalError):
            return StorageUnavailable(f"incident database {self.description!r}: cannot {doing}: {text}")
        return StorageError(f"incident database {self.description!r}: cannot {doing}: {text}")

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        if not self._write_lock.acquire(timeout=self._wait_s):
            raise StorageUnavailable(
                f"incident database {self.description!r}: writes of this process are queued longer than "
                f"{self._wait_s:g}s"
            )
        try:
            with self._connection() as conn:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise self._error(exc, "write") from exc
                try:
                    yield _SQLiteTx(conn)
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise self._error(exc, "write") from exc
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
        finally:
            self._write_lock.release()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connection() as conn:
            try:
                yield _SQLiteTx(conn)
            except sqlite3.Error as exc:
                raise self._error(exc, "read") from exc

    def migrate(self, store: str, migrations: Sequence[str]) -> int:
        """Bring the schema to `len(migrations)` in one transaction; refuse a newer one. Returns the version."""
        target = len(migrations)
        with self.write() as tx:
            row = tx.one("PRAGMA user_version")
            version = int(next(iter(row.values()))) if row else 0
            _refuse_newer(self.description, store, version, target)
            for step in range(version, target):
                for statement in _split(migrations[step]):
                    tx.execute(statement)
                tx.execute(f"PRAGMA user_version={step + 1}")
        return target

    def ping(self) -> None:
        with self.read() as tx:
            tx.one("SELECT 1 AS ok")

    def close(self) -> None:
        self._closed = True
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


# -- PostgreSQL ---------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


class _PostgresTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = self._conn.execute(self._sql(sql), tuple(args))
        return int(cur.rowcount)

    def one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        row = self._conn.execute(self._sql(sql), tuple(args)).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute(self._sql(sql), tuple(args)).fetchall()]


class PostgresDatabase:
    """PostgreSQL through a psycopg 3 connection pool; writes serialised by an advisory lock.

    `wait_s` bounds the wait for a pooled connection (and so the time a
    request waits while the database is down); `connect_timeout_s`,
    `lock_timeout_s` and `statement_timeout_s` are set on each connection.
    Broken connections (after a database restart) are checked and replaced
    when taken from the pool. The schema version of each store is a row of
    `genai_sre_schema`.
    """

    engine: Engine = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        wait_s: float = 2.0,
        connect_timeout_s: float = 3.0,
        lock_timeout_s: float = 5.0,
        statement_timeout_s: float = 15.0,
        application_name: str = "genai-sre",
    ) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - both are dependencies of genai-sre
            raise StorageError("a postgresql:// store needs the packages psycopg and psycopg-pool") from exc
        self._psycopg = psycopg
        self.description = redact_url(url)
        self._wait_s = wait_s
        options = f"-c lock_timeout={int(lock_timeout_s * 1000)} -c statement_timeout={int(statement_timeout_s * 1000)}"
        self._pool: ConnectionPool[Any] = ConnectionPool(
            conninfo=url,
            min_size=min_size,
            max_size=max_size,
            timeout=wait_s,
            open=False,
            check=ConnectionPool.check_connection,
            reconnect_timeout=60.0,
            name="genai-sre-incidents",
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, int(connect_timeout_s)),
                "options": options,
                "application_name": application_name,
            },
        )
        try:
            self._pool.open(wait=True, timeout=max(wait_s, connect_timeout_s))
        except Exception as exc:  # PoolTimeout or a connection error: the message names the cause
            self._pool.close()
            raise StorageUnavailable(f"cannot connect to incident database {self.description}: {exc}") from exc

    def _error(self, exc: Exception, doing: str) -> StorageError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, self._psycopg.OperationalError):
            return StorageUnavailable(f"incident database {self.description} unavailable ({doing}): {text}")
        return StorageError(f"incident database {self.description}: cannot {doing}: {text}")

    @contextlib.contextmanager
    def _connection(self, doing: str) -> Iterator[Any]:
        try:
            with self._pool.connection(timeout=self._wait_s) as conn:
                yield conn
        except self._psycopg.Error as exc:
            raise self._error(exc, doing) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        with self._connection("write") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            yield _PostgresTx(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connection("read") as conn:
            yield _PostgresTx(conn)

    def migrate(self, store: str, migrations: Sequence[str]) -> int:
        target = len(migrations)
        with self._connection("migrate") as conn, conn.transaction():
            # One instance migrates at a time; the others wait here, then find the work done.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS genai_sre_schema (store TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT version FROM genai_sre_schema WHERE store = %s", (store,)).fetchone()
            version = int(row["version"]) if row else 0
            _refuse_newer(self.description, store, version, target)
            for step in range(version, target):
                for statement in _split(migrations[step]):
                    conn.execute(statement)
            if target != version:
                conn.execute(
                    "INSERT INTO genai_sre_schema (store, version) VALUES (%s, %s)"
                    " ON CONFLICT (store) DO UPDATE SET version = excluded.version",
                    (store, target),
                )
        return target

    def ping(self) -> None:
        with self.read() as tx:
            tx.one("SELECT 1 AS ok")

    def close(self) -> None:
        self._pool.close()
