"""SQLite snapshots of the SLO engine's window state (`<data_dir>/slo.db`).

Each snapshot replaces the previous one in a single transaction: one row per
SLO and bucket ring (the counts as a blob), plus the alerts firing and the
time it was taken. After a `kill -9` the engine restarts from the last
snapshot, so at most one snapshot interval of events is lost.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from genai_sre.errors import StorageError

__all__ = ["DEFAULT_FILENAME", "EngineState", "RingState", "SLOStore"]

DEFAULT_FILENAME = "slo.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slo_rings (
    slo TEXT NOT NULL, tier TEXT NOT NULL, width_s REAL NOT NULL, count INTEGER NOT NULL,
    last INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (slo, tier));
CREATE TABLE IF NOT EXISTS slo_alerts (
    slo TEXT NOT NULL, severity TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (slo, severity));
CREATE TABLE IF NOT EXISTS slo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class RingState:
    width_s: float
    count: int
    last: int
    data: bytes


@dataclass(frozen=True, slots=True)
class EngineState:
    saved_at: float
    rings: Mapping[tuple[str, str], RingState] = field(default_factory=dict)
    firing: Mapping[tuple[str, str], float] = field(default_factory=dict)
    attachments: Mapping[str, str] = field(default_factory=dict)  # state of other stages saved with the windows


class SLOStore:
    """The snapshot file. Thread-safe; `path` may be a directory (the data dir) or a file."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.is_dir() or not p.suffix:
            p = p / DEFAULT_FILENAME
        self.path = p
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            # a short busy timeout: a locked file fails this snapshot (the next one retries), never stalls
            self._db = sqlite3.connect(str(p), timeout=0.25, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the SLO snapshot database {str(p)!r}: {exc}") from exc
        self._lock = threading.Lock()

    def save(self, state: EngineState) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM slo_rings")
                self._db.execute("DELETE FROM slo_alerts")
                self._db.executemany(
                    "INSERT INTO slo_rings VALUES (?, ?, ?, ?, ?, ?)",
                    [(slo, tier, r.width_s, r.count, r.last, r.data) for (slo, tier), r in state.rings.items()],
                )
                self._db.executemany(
                    "INSERT INTO slo_alerts VALUES (?, ?, ?)",
                    [(slo, sev, since) for (slo, sev), since in state.firing.items()],
                )
                self._db.execute("DELETE FROM slo_meta WHERE key LIKE 'attachment:%'")
                self._db.executemany(
                    "INSERT INTO slo_meta VALUES (?, ?)",
                    [(f"attachment:{name}", text) for name, text in state.attachments.items()],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO slo_meta VALUES ('saved_at', ?)", (repr(state.saved_at),)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StorageError(f"cannot write the SLO snapshot to {str(self.path)!r}: {exc}") from exc

    def load(self) -> EngineState | None:
        """The last snapshot, or None when there is none."""
        with self._lock:
            try:
                row = self._db.execute("SELECT value FROM slo_meta WHERE key = 'saved_at'").fetchone()
                if row is None:
                    return None
                rings = {
                    (slo, tier): RingState(float(w), int(c), int(last), bytes(data))
                    for slo, tier, w, c, last, data in self._db.execute("SELECT * FROM slo_rings")
                }
                firing = {(slo, sev): float(since) for slo, sev, since in self._db.execute("SELECT * FROM slo_alerts")}
                attachments = {
                    key.split(":", 1)[1]: value
                    for key, value in self._db.execute("SELECT key, value FROM slo_meta WHERE key LIKE 'attachment:%'")
                }
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the SLO snapshot from {str(self.path)!r}: {exc}") from exc
        return EngineState(saved_at=float(row[0]), rings=rings, firing=firing, attachments=attachments)

    def close(self) -> None:
        with self._lock:
            self._db.close()
