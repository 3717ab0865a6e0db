"""The incident store: SQLite in the data directory, WAL, schema migrations.

Every change is one transaction (`BEGIN IMMEDIATE` … `COMMIT`) with
`synchronous=FULL`, so once a method returns, what it wrote survives a
`kill -9` (and a power cut). `PRAGMA user_version` holds the schema version;
`MIGRATIONS[i]` takes version i to i+1. A database written by a newer
genai-sre is refused rather than guessed at.

Several processes may open the same file (the server and the CLI): SQLite's
locking serialises writers; `busy_timeout` makes them wait instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_sre.errors import StorageError
from genai_sre.events import Annotation, Incident, TimelineEvent

__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA_VERSION", "IncidentStore"]

DB_NAME = "incidents.db"

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: incidents, the alerts in them, their timeline, annotations, webhook receipts
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        group_key TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
        opened_at REAL NOT NULL,
        paged_at REAL,
        acknowledged_at REAL,
        resolved_at REAL,
        detected_burn_start_at REAL,
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX incidents_by_group ON incidents (group_key, status);
    CREATE TABLE incident_alerts (
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        fingerprint TEXT NOT NULL,
        starts_at REAL NOT NULL,
        status TEXT NOT NULL,
        ends_at REAL,
        labels TEXT NOT NULL DEFAULT '{}',
        annotations TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (incident_id, fingerprint, starts_at)
    );
    CREATE TABLE timeline (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX timeline_by_incident ON timeline (incident_id, at);
    CREATE TABLE annotations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE receipts (
        key TEXT PRIMARY KEY,
        at REAL NOT NULL,
        incident_id INTEGER
    );
    """,
    # 1 -> 2: find alerts by fingerprint across incidents, annotations by kind and time
    """
    CREATE INDEX incident_alerts_by_fingerprint ON incident_alerts (fingerprint, starts_at);
    CREATE INDEX annotations_by_kind ON annotations (kind, at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _incident(row: sqlite3.Row) -> Incident:
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


class IncidentStore:
    """Synchronous access to `incidents.db`; one connection, guarded by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=10000")
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open incident database {str(self.path)!r}: {exc}") from exc
        self._lock = threading.RLock()
        self._migrate()

    @classmethod
    def open(cls, data_dir: str | Path) -> IncidentStore:
        return cls(Path(data_dir) / DB_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        try:
            with self.transaction():
                version = self.schema_version
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path}: schema version {version} is newer than this genai-sre knows "
                        f"({SCHEMA_VERSION}); upgrade genai-sre"
                    )
                for target in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[target].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={target + 1}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot migrate incident database {str(self.path)!r}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- incidents --------------------------------------------------------------------------

    def create(
        self,
        db: sqlite3.Connection,
        *,
        title: str,
        group_key: str,
        severity: str,
        opened_at: float,
        labels: Mapping[str, str],
        paged_at: float | None,
        burn_start_at: float | None,
    ) -> str:
        cur = db.execute(
            "INSERT INTO incidents (title, group_key, severity, status, opened_at, paged_at, detected_burn_start_at,"
            " labels) VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
            (title, group_key, severity, opened_at, paged_at, burn_start_at, json.dumps(dict(labels), sort_keys=True)),
        )
        return str(cur.lastrowid)

    def get(self, incident_id: str) -> Incident | None:
        row = self._one("SELECT * FROM incidents WHERE id = ?", (_int_id(incident_id),))
        return _incident(row) if row else None

    def paged_at(self, incident_id: str) -> float | None:
        row = self._one("SELECT paged_at FROM incidents WHERE id = ?", (_int_id(incident_id),))
        return row["paged_at"] if row else None

    def find_open(self, db: sqlite3.Connection, group_key: str) -> str | None:
        row = db.execute(
            "SELECT id FROM incidents WHERE group_key = ? AND status != 'resolved' ORDER BY id DESC LIMIT 1",
            (group_key,),
        ).fetchone()
        return str(row["id"]) if row else None

    def list_incidents(self, status: str | None = None, limit: int = 100) -> list[Incident]:
        if status == "active":
            rows = self._all("SELECT * FROM incidents WHERE status != 'resolved' ORDER BY id DESC LIMIT ?", (limit,))
        elif status:
            rows = self._all("SELECT * FROM incidents WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
        else:
            rows = self._all("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,))
        return [_incident(r) for r in rows]

    def all_incidents(self) -> list[tuple[Incident, float | None]]:
        return [(_incident(r), r["paged_at"]) for r in self._all("SELECT * FROM incidents ORDER BY id", ())]

    def set_status(self, db: sqlite3.Connection, incident_id: str, status: str, column: str, at: float) -> None:
        assert column in ("acknowledged_at", "resolved_at")
        db.execute(
            f"UPDATE incidents SET status = ?, {column} = COALESCE({column}, ?) WHERE id = ?",
            (status, at, _int_id(incident_id)),
        )

    # -- alerts, timeline, annotations, receipts -------------------------------------------

    def alert_incident(self, db: sqlite3.Connection, fingerprint: str, starts_at: float) -> str | None:
        row = db.execute(
            "SELECT incident_id FROM incident_alerts WHERE fingerprint = ? AND abs(starts_at - ?) < 0.001 LIMIT 1",
            (fingerprint, starts_at),
        ).fetchone()
        return str(row["incident_id"]) if row else None

    def alert_status(self, db: sqlite3.Connection, incident_id: str, fingerprint: str, starts_at: float) -> str | None:
        row = db.execute(
            "SELECT status FROM incident_alerts"
            " WHERE incident_id = ? AND fingerprint = ? AND abs(starts_at - ?) < 0.001",
            (_int_id(incident_id), fingerprint, starts_at),
        ).fetchone()
        return str(row["status"]) if row else None

    def all_alerts_resolved(self, db: sqlite3.Connection, incident_id: str) -> bool:
        row = db.execute(
            "SELECT count(*) AS n FROM incident_alerts WHERE incident_id = ? AND status != 'resolved'",
            (_int_id(incident_id),),
        ).fetchone()
        return int(row["n"]) == 0

    def upsert_alert(
        self,
        db: sqlite3.Connection,
        incident_id: str,
        fingerprint: str,
        starts_at: float,
        status: str,
        ends_at: float | None,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> None:
        db.execute(
            "INSERT INTO incident_alerts VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, fingerprint, starts_at)"
            " DO UPDATE SET status = excluded.status, ends_at = excluded.ends_at, annotations = excluded.annotations",
            (
                _int_id(incident_id),
                fingerprint,
                starts_at,
                status,
                ends_at,
                json.dumps(dict(labels), sort_keys=True),
                json.dumps(dict(annotations), sort_keys=True),
            ),
        )

    def alerts(self, incident_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY starts_at", (_int_id(incident_id),)
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
        rows = self._all(
            f"SELECT DISTINCT a.incident_id FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id"
            f" WHERE i.status != 'resolved' AND a.fingerprint IN ({marks})",
            tuple(fingerprints),
        )
        return [str(r["incident_id"]) for r in rows]

    def add_event(
        self,
        db: sqlite3.Connection,
        incident_id: str,
        at: float,
        kind: str,
        text: str,
        data: Mapping[str, str] | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO timeline (incident_id, at, kind, text, data) VALUES (?, ?, ?, ?, ?)",
            (_int_id(incident_id), at, kind, text, json.dumps(dict(data or {}), sort_keys=True)),
        )

    def events(self, incident_id: str) -> list[TimelineEvent]:
        rows = self._all("SELECT * FROM timeline WHERE incident_id = ? ORDER BY at, id", (_int_id(incident_id),))
        return [
            TimelineEvent(str(r["incident_id"]), r["at"], r["kind"], r["text"], json.loads(r["data"])) for r in rows
        ]

    def add_annotation(self, db: sqlite3.Connection, annotation: Annotation) -> int:
        cur = db.execute(
            "INSERT INTO annotations (kind, at, text, labels) VALUES (?, ?, ?, ?)",
            (annotation.kind, annotation.at, annotation.text, json.dumps(dict(annotation.labels), sort_keys=True)),
        )
        return int(cur.lastrowid or 0)

    def annotations(self, kind: str | None = None, start: float = 0.0, end: float = float("inf")) -> list[Annotation]:
        sql = "SELECT * FROM annotations WHERE at >= ? AND at <= ?"
        args: tuple[Any, ...] = (start, end if end != float("inf") else 1e18)
        if kind:
            sql += " AND kind = ?"
            args += (kind,)
        rows = self._all(sql + " ORDER BY at, id", args)
        return [Annotation(r["kind"], r["at"], r["text"], json.loads(r["labels"])) for r in rows]

    def has_receipt(self, db: sqlite3.Connection, key: str) -> bool:
        return db.execute("SELECT 1 FROM receipts WHERE key = ?", (key,)).fetchone() is not None

    def add_receipt(self, db: sqlite3.Connection, key: str, at: float, incident_id: str | None) -> None:
        db.execute(
            "INSERT INTO receipts (key, at, incident_id) VALUES (?, ?, ?)",
            (key, at, _int_id(incident_id) if incident_id else None),
        )

    def count_receipts(self) -> int:
        row = self._one("SELECT count(*) AS n FROM receipts", ())
        return int(row["n"]) if row else 0

    # -- helpers ----------------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())


def _int_id(incident_id: str | int) -> int:
    try:
        return int(str(incident_id).removeprefix("INC-").removeprefix("inc-"))
    except ValueError as exc:
        raise KeyError(f"no incident {incident_id!r}: ids are numbers") from exc
