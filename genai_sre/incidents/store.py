"""The incident store: incidents, their alerts and timelines, annotations, webhook receipts and silences.

One class over two engines (`genai_sre.storage.sql`): SQLite in the data
directory (the default, `<data dir>/incidents.db`, WAL, `synchronous=FULL`)
or PostgreSQL (`incidents.store_url: postgresql://...`), which several
primaries share. The SQL is written once. Every change is one transaction
(`transaction()`), and writes are serialised on both engines, so two
processes that apply the same webhook at the same moment see each other's
result; constraints back that up (a webhook receipt per body, at most one
unresolved incident per group key). Once a method returns, what it wrote is
committed.

Migrations run at open, one process at a time; a database written by a newer
genai-sre is refused. Methods are synchronous: callers on an event loop run
them in `executor` (a few threads of their own), never on the loop.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from genai_sre.errors import ConfigError
from genai_sre.events import Annotation, Incident, TimelineEvent
from genai_sre.incidents.schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS, STORE_NAME
from genai_sre.storage.sql import Database, PostgresDatabase, SQLiteDatabase, Tx, is_postgres_url

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORE_URL_ENV",
    "TABLES",
    "IncidentStore",
    "open_store",
    "resolve_store_url",
]

DB_NAME = "incidents.db"
STORE_URL_ENV = "GENAI_SRE_INCIDENTS_URL"
MIGRATIONS = SQLITE_MIGRATIONS  # the SQLite scripts; POSTGRES_MIGRATIONS mirror them version by version

# Tables and their columns, in the order a copy must follow (references first).
TABLES: dict[str, tuple[str, ...]] = {
    "incidents": (
        "id",
        "title",
        "group_key",
        "severity",
        "status",
        "opened_at",
        "paged_at",
        "acknowledged_at",
        "resolved_at",
        "detected_burn_start_at",
        "labels",
    ),
    "incident_alerts": ("incident_id", "fingerprint", "starts_at", "status", "ends_at", "labels", "annotations"),
    "timeline": ("id", "incident_id", "at", "kind", "text", "data"),
    "annotations": ("id", "kind", "at", "text", "labels"),
    "receipts": ("key", "at", "incident_id"),
    "silences": ("id", "matchers", "starts_at", "ends_at", "comment", "created_at"),
}
_IDENTITY = ("incidents", "timeline", "annotations")
_MAX_ID = 2**63 - 1


def _incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=str(row["id"]),
        title=row["title"],
        group_key=row["group_key"],
        severity=row["severity"],
        status=row["status"],
        opened_at=row["opened_at"],
        labels=json.loads(row["labels"]),
        acknowledged_at=row["acknowledged_at"],
        resolved_at=row["resolved_at"],
        detected_burn_start_at=row["detected_burn_start_at"],
    )


def _dumps(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), sort_keys=True)


def resolve_store_url(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """`incidents.store_url` when set, else `$GENAI_SRE_INCIDENTS_URL`, else "" (SQLite in the data dir)."""
    env = os.environ if environ is None else environ
    return (configured or env.get(STORE_URL_ENV) or "").strip()


def open_store(url: str = "", data_dir: str | Path = ".", **options: Any) -> IncidentStore:
    """The incident store named by `url`: "" (SQLite in `data_dir`), `sqlite:PATH` or `postgresql://...`.

    `options` go to the engine (e.g. `busy_timeout_s` for SQLite, `max_size` for PostgreSQL).
    """
    data = Path(data_dir)
    if not url:
        db: Database = SQLiteDatabase(data / DB_NAME, **options)
    elif url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ConfigError("a sqlite: store URL needs a path, e.g. sqlite:/var/lib/genai-sre/incidents.db")
        db = SQLiteDatabase(Path(path), **options)
    elif is_postgres_url(url):
        db = PostgresDatabase(url, **options)
    else:
        raise ConfigError(
            "incidents.store_url must be empty (SQLite in the data directory), sqlite:PATH or "
            f"postgresql://user@host/db, got a URL starting {url.split(':', 1)[0]!r}"
        )
    return IncidentStore(db, data_dir=data)


class IncidentStore:
    """Synchronous access to the incident database; thread-safe."""

    def __init__(self, db: Database | str | Path, *, data_dir: str | Path | None = None) -> None:
        if isinstance(db, str | Path):
            db = SQLiteDatabase(Path(db))  # a path: the SQLite file itself
        self.db: Database = db
        self.engine = db.engine
        # where files that belong with the store go (postmortem drafts): the SQLite file's folder by default
        self.data_dir = Path(data_dir) if data_dir is not None else getattr(db, "path", Path(".")).parent
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="genai-sre-incidents")
        try:
            migrations = POSTGRES_MIGRATIONS if db.engine == "postgresql" else SQLITE_MIGRATIONS
            self.schema_version = db.migrate(STORE_NAME, migrations)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, data_dir: str | Path) -> IncidentStore:
        return open_store("", data_dir)

    @property
    def description(self) -> str:
        return self.db.description

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.close()

    def transaction(self) -> contextlib.AbstractContextManager[Tx]:
        """One atomic write: everything inside commits together or not at all."""
        return self.db.write()

    def ping(self) -> None:
        self.db.ping()

    @contextlib.contextmanager
    def _reading(self, tx: Tx | None) -> Iterator[Tx]:
        if tx is not None:
            yield tx
        else:
            with self.db.read() as fresh:
                yield fresh

    # -- incidents --------------------------------------------------------------------------

    def create(
        self,
        db: Tx,
        *,
        title: str,
        group_key: str,
        severity: str,
        opened_at: float,
        labels: Mapping[str, str],
        paged_at: float | None,
        burn_start_at: float | None,
    ) -> str:
        row = db.one(
            "INSERT INTO incidents (title, group_key, severity, status, opened_at, paged_at, detected_burn_start_at,"
            " labels) VALUES (?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
            (title, group_key, severity, opened_at, paged_at, burn_start_at, _dumps(labels)),
        )
        assert row is not None
        return str(row["id"])

    def get(self, incident_id: str, tx: Tx | None = None) -> Incident | None:
        with self._reading(tx) as db:
            row = db.one("SELECT * FROM incidents WHERE id = ?", (_int_id(incident_id),))
        return _incident(row) if row else None

    def paged_at(self, incident_id: str) -> float | None:
        with self.db.read() as db:
            row = db.one("SELECT paged_at FROM incidents WHERE id = ?", (_int_id(incident_id),))
        return row["paged_at"] if row else None

    def find_open(self, db: Tx, group_key: str) -> str | None:
        row = db.one(
            "SELECT id FROM incidents WHERE group_key = ? AND status != 'resolved' ORDER BY id DESC LIMIT 1",
            (group_key,),
        )
        return str(row["id"]) if row else None

    def list_incidents(self, status: str | None = None, limit: int = 100) -> list[Incident]:
        with self.db.read() as db:
            if status == "active":
                rows = db.all("SELECT * FROM incidents WHERE status != 'resolved' ORDER BY id DESC LIMIT ?", (limit,))
            elif status:
                rows = db.all("SELECT * FROM incidents WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
            else:
                rows = db.all("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,))
        return [_incident(r) for r in rows]

    def count_active(self) -> int:
        with self.db.read() as db:
            row = db.one("SELECT count(*) AS n FROM incidents WHERE status != 'resolved'")
        return int(row["n"]) if row else 0

    def all_incidents(self) -> list[tuple[Incident, float | None]]:
        with self.db.read() as db:
            rows = db.all("SELECT * FROM incidents ORDER BY id")
        return [(_incident(r), r["paged_at"]) for r in rows]

    def set_status(self, db: Tx, incident_id: str, status: str, column: str, at: float) -> None:
        assert column in ("acknowledged_at", "resolved_at")
        db.execute(
            f"UPDATE incidents SET status = ?, {column} = COALESCE({column}, ?) WHERE id = ?",
            (status, at, _int_id(incident_id)),
        )

    # -- alerts, timeline, annotations, receipts -------------------------------------------

    def alert_incident(self, db: Tx, fingerprint: str, starts_at: float) -> str | None:
        row = db.one(
            "SELECT incident_id FROM incident_alerts WHERE fingerprint = ? AND abs(starts_at - ?) < 0.001 LIMIT 1",
            (fingerprint, starts_at),
        )
        return str(row["incident_id"]) if row else None

    def alert_status(self, db: Tx, incident_id: str, fingerprint: str, starts_at: float) -> str | None:
        row = db.one(
            "SELECT status FROM incident_alerts"
            " WHERE incident_id = ? AND fingerprint = ? AND abs(starts_at - ?) < 0.001",
            (_int_id(incident_id), fingerprint, starts_at),
        )
        return str(row["status"]) if row else None

    def all_alerts_resolved(self, db: Tx, incident_id: str) -> bool:
        row = db.one(
            "SELECT count(*) AS n FROM incident_alerts WHERE incident_id = ? AND status != 'resolved'",
            (_int_id(incident_id),),
        )
        return row is not None and int(row["n"]) == 0

    def upsert_alert(
        self,
        db: Tx,
        incident_id: str,
        fingerprint: str,
        starts_at: float,
        status: str,
        ends_at: float | None,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> None:
        # A resolution keeps the annotations the alert fired with (burn rate and budget at page time): a
        # postmortem quotes those, not the values of the evaluation that resolved it.
        db.execute(
            "INSERT INTO incident_alerts (incident_id, fingerprint, starts_at, status, ends_at, labels, annotations)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, fingerprint, starts_at)"
            " DO UPDATE SET status = excluded.status, ends_at = excluded.ends_at, annotations = CASE"
            " WHEN excluded.status = 'firing' THEN excluded.annotations ELSE incident_alerts.annotations END",
            (_int_id(incident_id), fingerprint, starts_at, status, ends_at, _dumps(labels), _dumps(annotations)),
        )

    def alerts(self, incident_id: str) -> list[dict[str, Any]]:
        with self.db.read() as db:
            rows = db.all(
                "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY starts_at, fingerprint",
                (_int_id(incident_id),),
            )
        return [
            {
                "fingerprint": r["fingerprint"],
                "starts_at": r["starts_at"],
                "status": r["status"],
                "ends_at": r["ends_at"],
                "labels": json.loads(r["labels"]),
                "annotations": json.loads(r["annotations"]),
            }
            for r in rows
        ]

    def open_incidents_with(self, fingerprints: Sequence[str]) -> list[str]:
        if not fingerprints:
            return []
        marks = ", ".join("?" for _ in fingerprints)
        with self.db.read() as db:
            rows = db.all(
                f"SELECT DISTINCT a.incident_id FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id"
                f" WHERE i.status != 'resolved' AND a.fingerprint IN ({marks}) ORDER BY a.incident_id",
                tuple(fingerprints),
            )
        return [str(r["incident_id"]) for r in rows]

    def add_event(
        self,
        db: Tx,
        incident_id: str,
        at: float,
        kind: str,
        text: str,
        data: Mapping[str, str] | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO timeline (incident_id, at, kind, text, data) VALUES (?, ?, ?, ?, ?)",
            (_int_id(incident_id), at, kind, text, _dumps(data)),
        )

    def events(self, incident_id: str) -> list[TimelineEvent]:
        with self.db.read() as db:
            rows = db.all("SELECT * FROM timeline WHERE incident_id = ? ORDER BY at, id", (_int_id(incident_id),))
        return [
            TimelineEvent(str(r["incident_id"]), r["at"], r["kind"], r["text"], json.loads(r["data"])) for r in rows
        ]

    def add_annotation(self, db: Tx, annotation: Annotation) -> int:
        row = db.one(
            "INSERT INTO annotations (kind, at, text, labels) VALUES (?, ?, ?, ?) RETURNING id",
            (annotation.kind, annotation.at, annotation.text, _dumps(annotation.labels)),
        )
        return int(row["id"]) if row else 0

    def annotations(self, kind: str | None = None, start: float = 0.0, end: float = float("inf")) -> list[Annotation]:
        sql = "SELECT * FROM annotations WHERE at >= ? AND at <= ?"
        args: tuple[Any, ...] = (start, end if end != float("inf") else 1e18)
        if kind:
            sql += " AND kind = ?"
            args += (kind,)
        with self.db.read() as db:
            rows = db.all(sql + " ORDER BY at, id", args)
        return [Annotation(r["kind"], r["at"], r["text"], json.loads(r["labels"])) for r in rows]

    def has_receipt(self, db: Tx, key: str) -> bool:
        return db.one("SELECT 1 AS found FROM receipts WHERE key = ?", (key,)) is not None

    def add_receipt(self, db: Tx, key: str, at: float, incident_id: str | None) -> None:
        db.execute(
            "INSERT INTO receipts (key, at, incident_id) VALUES (?, ?, ?)",
            (key, at, _int_id(incident_id) if incident_id else None),
        )

    def count_receipts(self) -> int:
        with self.db.read() as db:
            row = db.one("SELECT count(*) AS n FROM receipts")
        return int(row["n"]) if row else 0

    # -- silences ---------------------------------------------------------------------------

    def add_silence(self, silence: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    silence["id"],
                    json.dumps(list(silence["matchers"])),
                    silence["starts_at"],
                    silence["ends_at"],
                    silence.get("comment", ""),
                    silence.get("created_at", 0.0),
                ),
            )

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when there is no such silence still running or pending."""
        with self.transaction() as db:
            changed = db.execute("UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?", (now, silence_id, now))
        return changed > 0

    def silences(self, now: float) -> list[dict[str, Any]]:
        """Silences that have not ended (active or pending), ending soonest first."""
        with self.db.read() as db:
            rows = db.all("SELECT * FROM silences WHERE ends_at > ? ORDER BY ends_at, id", (now,))
        return [{**r, "matchers": json.loads(r["matchers"])} for r in rows]

    # -- retention --------------------------------------------------------------------------

    def prune(self, *, incidents_before: float, receipts_before: float) -> dict[str, int]:
        """Delete incidents resolved before `incidents_before` (with their alerts and timelines),
        annotations and ended silences older than it, and webhook receipts older than `receipts_before`."""
        with self.transaction() as db:
            old = "SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at < ?"
            counts = {
                "incident_alerts": db.execute(
                    f"DELETE FROM incident_alerts WHERE incident_id IN ({old})", (incidents_before,)
                ),
                "timeline": db.execute(f"DELETE FROM timeline WHERE incident_id IN ({old})", (incidents_before,)),
                "receipts": db.execute(
                    f"DELETE FROM receipts WHERE at < ? OR incident_id IN ({old})", (receipts_before, incidents_before)
                ),
                "incidents": db.execute(
                    "DELETE FROM incidents WHERE status = 'resolved' AND resolved_at < ?", (incidents_before,)
                ),
                "annotations": db.execute("DELETE FROM annotations WHERE at < ?", (incidents_before,)),
                "silences": db.execute("DELETE FROM silences WHERE ends_at < ?", (incidents_before,)),
            }
        return counts

    # -- copy between stores ----------------------------------------------------------------

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of one table, in a stable order (for `genai-sre incidents migrate`)."""
        columns = TABLES[table]
        with self.db.read() as db:
            return db.all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns[:3])}")

    def is_empty(self) -> bool:
        with self.db.read() as db:
            return all(db.one(f"SELECT 1 AS found FROM {t} LIMIT 1") is None for t in TABLES)

    def copy_from(self, source: IncidentStore) -> dict[str, int]:
        """Copy every row of `source` into this (empty) store in one transaction, ids kept."""
        if not self.is_empty():
            raise ConfigError(f"the target store {self.description} is not empty: refusing to merge into it")
        counts: dict[str, int] = {}
        with self.transaction() as db:
            for table, columns in TABLES.items():
                rows = source.rows(table)
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                for row in rows:
                    db.execute(sql, tuple(row[c] for c in columns))
                counts[table] = len(rows)
            if self.engine == "postgresql":  # identity columns continue after the copied ids
                for table in _IDENTITY:
                    db.one(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" COALESCE((SELECT max(id) FROM {table}), 0) + 1, false) AS v"
                    )
        return counts


def _int_id(incident_id: str | int) -> int:
    try:
        value = int(str(incident_id).removeprefix("INC-").removeprefix("inc-"))
    except ValueError as exc:
        raise KeyError(f"no incident {incident_id!r}: ids are numbers") from exc
    if not 0 < value <= _MAX_ID:
        raise KeyError(f"no incident {incident_id!r}")
    return value
