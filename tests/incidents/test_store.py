from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from genai_sre.alerting.silences import Silences
from genai_sre.errors import StorageError
from genai_sre.incidents.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, IncidentStore
from tests.alerting.helpers import FakeClock


def test_fresh_database_is_wal_and_current(tmp_path: Path) -> None:
    store = IncidentStore.open(tmp_path)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_migrates_an_old_database(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version=1")
    db.execute(
        "INSERT INTO incidents (title, group_key, severity, status, opened_at) VALUES ('t', 'g', 'SEV-2', 'open', 1)"
    )
    db.commit()
    db.close()
    store = IncidentStore.open(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    assert [i.title for i in store.list_incidents()] == ["t"]
    indexes = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "annotations_by_kind" in indexes
    store.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer"):
        IncidentStore.open(tmp_path)


def test_silences_survive_restart_and_expire(tmp_path: Path) -> None:
    clock = FakeClock()
    silences = Silences(clock, tmp_path / "silences.json")
    s = silences.add(['slo=~"chat-.*"'], ends_at=clock.now + 60, comment="deploy window")
    again = Silences(clock, tmp_path / "silences.json")
    assert again.silenced_by({"slo": "chat-latency"}) == s.id
    assert again.silenced_by({"slo": "other"}) is None
    clock.advance(61)
    assert again.silenced_by({"slo": "chat-latency"}) is None
    with pytest.raises(ValueError, match="future"):
        again.add(['slo="x"'], ends_at=clock.now - 1)
    with pytest.raises(ValueError, match="bad matcher"):
        again.add(["slo"], ends_at=clock.now + 1)
