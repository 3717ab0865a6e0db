from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import psycopg
import pytest

from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.errors import StorageError
from genai_sre.events import Annotation
from genai_sre.incidents.schema import POSTGRES_MIGRATIONS
from genai_sre.incidents.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, IncidentStore, open_store
from tests.alerting.helpers import FakeClock


def test_fresh_database_is_wal_current_and_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = IncidentStore.open(data)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS) == len(POSTGRES_MIGRATIONS)
    with store.db.read() as db:
        assert db.one("PRAGMA journal_mode") == {"journal_mode": "wal"}
    with store.transaction() as db:
        store.add_annotation(db, Annotation("deploy", 1.0, "", {"model": "m"}))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for f in data.iterdir():  # the database and its WAL and shared-memory files
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
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
    (tmp_path / DB_NAME).chmod(0o644)
    store = IncidentStore.open(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    assert [i.title for i in store.list_incidents()] == ["t"]
    with store.db.read() as rdb:
        indexes = {r["name"] for r in rdb.all("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"annotations_by_kind", "incidents_one_unresolved_per_group"} <= indexes
    assert stat.S_IMODE((tmp_path / DB_NAME).stat().st_mode) == 0o600
    store.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer"):
        IncidentStore.open(tmp_path)


def test_postgres_refuses_a_newer_schema(tmp_path: Path, pg_url: str) -> None:
    open_store(pg_url, tmp_path).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE genai_sre_schema SET version = version + 1 WHERE store = 'incidents'")
    with pytest.raises(StorageError, match="newer"):
        open_store(pg_url, tmp_path)


def test_postgres_migrates_once_when_several_start_together(tmp_path: Path, pg_url: str) -> None:
    stores: list[IncidentStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            stores.append(open_store(pg_url, tmp_path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(stores) == 4
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM genai_sre_schema").fetchall() == [(SCHEMA_VERSION,)]
    for s in stores:
        s.close()


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"cannot connect to incident database postgresql://u:\*\*\*@127\.0\.0\.1"):
        open_store("postgresql://u:secret@127.0.0.1:9/db", tmp_path, wait_s=0.5, connect_timeout_s=1)


def test_one_unresolved_incident_per_group(tmp_path: Path, store_url: str) -> None:
    store = open_store(store_url, tmp_path)
    fields = {"title": "t", "group_key": "g", "severity": "SEV-2", "opened_at": 1.0, "labels": {}}
    with store.transaction() as db:
        store.create(db, paged_at=None, burn_start_at=None, **fields)  # type: ignore[arg-type]
    with pytest.raises(StorageError), store.transaction() as db:
        store.create(db, paged_at=None, burn_start_at=None, **fields)  # type: ignore[arg-type]
    assert len(store.list_incidents()) == 1
    store.close()


def test_silences_survive_restart_and_expire(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    store = open_store(store_url, tmp_path)
    silences = Silences(clock, backend=StoreSilences(store))
    s = silences.add(['slo=~"chat-.*"'], ends_at=clock.now + 60, comment="deploy window")
    again = Silences(clock, backend=StoreSilences(store))
    assert again.silenced_by({"slo": "chat-latency"}) == s.id
    assert again.silenced_by({"slo": "other"}) is None
    clock.advance(61)
    assert again.silenced_by({"slo": "chat-latency"}) is None
    with pytest.raises(ValueError, match="future"):
        again.add(['slo="x"'], ends_at=clock.now - 1)
    with pytest.raises(ValueError, match="bad matcher"):
        again.add(["slo"], ends_at=clock.now + 1)
    store.close()


def test_silences_file_survives_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    silences = Silences(clock, tmp_path / "silences.json")
    s = silences.add(['slo="chat"'], ends_at=clock.now + 60)
    again = Silences(clock, tmp_path / "silences.json")
    assert again.silenced_by({"slo": "chat"}) == s.id
    assert again.expire(s.id) and not again.expire(s.id)
    silences.refresh()
    assert silences.silenced_by({"slo": "chat"}) is None


def test_retention_deletes_only_what_is_old(tmp_path: Path, store_url: str) -> None:
    store = open_store(store_url, tmp_path)
    day = 86400.0
    with store.transaction() as db:
        for n, (status, resolved_at) in enumerate([("resolved", 10 * day), ("resolved", 500 * day), ("open", None)]):
            iid = store.create(
                db,
                title=f"t{n}",
                group_key=f"g{n}",
                severity="SEV-2",
                opened_at=5 * day,
                labels={},
                paged_at=None,
                burn_start_at=None,
            )
            store.upsert_alert(db, iid, "fp", 5 * day, "firing", None, {}, {})
            store.add_event(db, iid, 5 * day, "opened", "x")
            store.add_receipt(db, f"r{n}", 5 * day, iid)
            if resolved_at is not None:
                store.set_status(db, iid, status, "resolved_at", resolved_at)
        store.add_annotation(db, Annotation("deploy", 1 * day, "", {}))
        store.add_annotation(db, Annotation("deploy", 499 * day, "", {}))
        store.add_receipt(db, "fresh", 499 * day, None)
    store.add_silence({"id": "old", "matchers": ['a="b"'], "starts_at": 0.0, "ends_at": 2 * day})
    counts = store.prune(incidents_before=100 * day, receipts_before=470 * day)
    assert counts == {
        "incident_alerts": 1,
        "timeline": 1,
        "receipts": 3,
        "incidents": 1,
        "annotations": 1,
        "silences": 1,
    }
    assert sorted(i.title for i in store.list_incidents()) == ["t1", "t2"]  # open incidents are never pruned
    assert store.count_receipts() == 1
    store.close()
