"""Open the SQLite database in the data directory and bring its schema up to date.

Each store names its migrations (a list of SQL scripts, applied in order once);
the applied version is kept per store in `schema_versions`. WAL mode keeps
readers (the CLI) and the writer (the sidecar) out of each other's way, and a
crash never leaves a half-applied migration: each runs in a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from genai_sre.errors import StorageError
from genai_sre.storage.sql import secure_data_dir, secure_file

__all__ = ["open_db"]


def open_db(path: Path, store: str, migrations: Sequence[str]) -> sqlite3.Connection:
    try:
        secure_data_dir(path.parent)  # 0700
        secure_file(path)  # 0600: redacted samples are still user data
        conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_versions WHERE store = ?", (store,)).fetchone()
        current = int(row[0]) if row else 0
        if current > len(migrations):
            raise StorageError(
                f"{path}: store {store!r} has schema version {current}, newer than this genai-sre ({len(migrations)})"
            )
        for version in range(current + 1, len(migrations) + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                _apply(conn, migrations[version - 1])
                conn.execute(
                    "INSERT INTO schema_versions (store, version) VALUES (?, ?) "
                    "ON CONFLICT(store) DO UPDATE SET version = excluded.version",
                    (store, version),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return conn
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {str(path)!r}: {exc}") from exc


def _apply(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the open transaction; run statements one by one instead.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
