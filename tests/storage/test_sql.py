"""The SQL layer's schema versions: migrations run once, in order; a newer schema is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_sre.errors import StorageError
from genai_sre.storage.sql import SQLiteDatabase

STEPS = ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"]


def test_migrations_run_once_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "s.db")
    try:
        assert db.migrate("incidents", STEPS[:1]) == 1
        assert db.migrate("incidents", STEPS) == 2  # only the second step runs (the first would fail again)
        assert db.migrate("incidents", STEPS) == 2
        with pytest.raises(StorageError, match=r"incidents schema version 2 is newer than this genai-sre knows \(1\)"):
            db.migrate("incidents", STEPS[:1])
        with db.read() as tx:
            assert tx.one("SELECT count(*) AS n FROM b") == {"n": 0}  # nothing was rolled back or dropped
    finally:
        db.close()
