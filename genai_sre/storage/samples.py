"""The evidence store: a redacted record of sampled and flagged exchanges, for postmortems.

Content (question, answer, context, evidence spans) is stored only when
`storage.store_samples` is on, for a `sample_rate` share of exchanges plus
every flagged one, always redacted. Without it, flagged exchanges are still
recorded by their findings (detector, name, score, label, SHAP features), with
no text. Writes happen on a background thread through a bounded queue: a full
queue drops, it never slows the pipeline. Every exchange that is not kept is
counted by reason (`on_dropped`: `queue_full`, `write_failed`). Retention
deletes rows older than `retention_days` and keeps at most `max_samples`; it
runs on a timer (every `RETENTION_EVERY_S`), whether or not writes succeed.

Each row records the SLOs that counted the exchange as a bad event (`judge`,
the SLI recorder's verdict), so a postmortem quotes exactly the events that
burned the SLO of its incident (`samples(..., slo=name)`). An exchange that an
SLO counted as bad is always kept, even when no detector flagged it.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_sre.config import StorageConfig
from genai_sre.events import Evaluation, Finding
from genai_sre.storage.db import open_db
from genai_sre.storage.redact import Redactor

__all__ = ["BAD_LABELS", "SampleStore"]

logger = logging.getLogger(__name__)

BAD_LABELS = frozenset({"flagged", "fail", "slow", "regressed", "refusal", "unsupported", "drift"})
MAX_TEXT = 4000
RETENTION_EVERY_S = 60.0

MIGRATIONS = (
    """
    CREATE TABLE samples (
        id TEXT PRIMARY KEY,
        at REAL NOT NULL,
        route TEXT, model TEXT, upstream TEXT, status INTEGER, error TEXT,
        ttft_s REAL, duration_s REAL,
        bad INTEGER NOT NULL,
        labels TEXT NOT NULL,
        findings TEXT NOT NULL,
        question TEXT, answer TEXT, context TEXT
    );
    CREATE INDEX samples_at ON samples (at);
    CREATE INDEX samples_bad_at ON samples (bad, at)
    """,
    # The SLOs that counted the exchange as bad, as |name|name| ('' for none).
    """
    ALTER TABLE samples ADD COLUMN slos TEXT NOT NULL DEFAULT ''
    """,
)


def is_bad(finding: Finding) -> bool:
    return (finding.label or "") in BAD_LABELS


class SampleStore:
    """An `EvaluationSink` writing redacted samples to `<data_dir>/evidence.db`."""

    def __init__(
        self,
        data_dir: Path,
        config: StorageConfig,
        on_stored: Callable[[], None] | None = None,
        rng: random.Random | None = None,
        queue_size: int = 1000,
        on_dropped: Callable[[str, int], None] | None = None,
        retention_every_s: float = RETENTION_EVERY_S,
        judge: Callable[[Evaluation], Sequence[str]] | None = None,
    ) -> None:
        self.path = data_dir / "evidence.db"
        self.config = config
        self.judge = judge  # the SLOs that count an evaluation as a bad event (set by the wiring)
        self.on_stored = on_stored
        self.on_dropped = on_dropped
        self.retention_every_s = retention_every_s
        self.rng = rng or random.Random()
        self.dropped = 0
        self.stored = 0
        self.redact = Redactor(config.redaction)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._conn = open_db(self.path, "samples", MIGRATIONS)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._writer, name="genai-sre-evidence", daemon=True)
        self._thread.start()

    # -- the sink (pipeline side) --------------------------------------------------------------

    def consume(self, evaluation: Evaluation) -> None:
        ex = evaluation.exchange
        if ex.probe:
            return
        slos = tuple(self.judge(evaluation)) if self.judge is not None and not evaluation.supplement else ()
        bad = any(is_bad(f) for f in evaluation.findings) or (not ex.ok and not evaluation.supplement) or bool(slos)
        content = self.config.store_samples and (bad or self.rng.random() < self.config.sample_rate)
        if not bad and not content:
            return
        # A supplement (findings that came later) is its own row, next to the exchange's.
        key = f"{ex.id}+{'+'.join(f.name for f in evaluation.findings)}" if evaluation.supplement else ex.id
        row = {
            "id": key,
            "at": ex.started_at,
            "route": ex.route,
            "model": ex.model,
            "upstream": ex.upstream,
            "status": ex.status,
            "error": ex.error,
            "ttft_s": ex.ttft_s,
            "duration_s": ex.duration_s,
            "bad": int(bad),
            "labels": json.dumps(dict(ex.labels)),
            "findings": json.dumps([_finding(f, self.redact if content else None) for f in evaluation.findings]),
            "question": self.redact(ex.question[:MAX_TEXT]) if content else None,
            "answer": self.redact(ex.answer[:MAX_TEXT]) if content else None,
            "context": self.redact(ex.context_text[:MAX_TEXT]) if content else None,
            "slos": "".join(f"|{name}" for name in slos) + ("|" if slos else ""),
        }
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._drop("queue_full", 1)

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        if self.on_dropped is not None:
            try:
                self.on_dropped(reason, n)
            except Exception:  # isolation boundary: counting must not break the writer
                logger.exception("evidence drop counter failed")

    # -- the writer thread ---------------------------------------------------------------------

    def _writer(self) -> None:
        last_retention = time.monotonic()
        while True:
            if time.monotonic() - last_retention >= self.retention_every_s:
                last_retention = time.monotonic()
                try:
                    self.apply_retention()
                except Exception:  # isolation boundary: a disk problem must not kill the thread
                    logger.exception("evidence store retention failed")
            try:
                row = self._queue.get(timeout=max(0.05, self.retention_every_s - (time.monotonic() - last_retention)))
            except queue.Empty:
                continue
            if row is None:
                self._queue.task_done()
                return
            batch = [row]
            stop_after = False
            while len(batch) < 200:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop_after = True  # stop after this batch
                    self._queue.task_done()
                    break
                batch.append(nxt)
            try:
                self._write(batch)
            except Exception:  # isolation boundary: a disk problem must not kill the thread
                logger.exception("evidence store write failed (%d rows lost)", len(batch))
                self._drop("write_failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop_after:
                return

    def _write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        rows = [row if "slos" in row else {**row, "slos": ""} for row in rows]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO samples (id, at, route, model, upstream, status, error, ttft_s, duration_s, "
                    "bad, labels, findings, question, answer, context, slos) VALUES (:id, :at, :route, :model, "
                    ":upstream, :status, :error, :ttft_s, :duration_s, :bad, :labels, :findings, :question, :answer, "
                    ":context, :slos)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")  # leave no open transaction behind for the next batch
                raise
        self.stored += len(rows)
        if self.on_stored is not None:
            for _ in rows:
                self.on_stored()

    def apply_retention(self, now: float | None = None) -> int:
        cutoff = (now if now is not None else time.time()) - self.config.retention_days * 86400
        with self._lock:
            cur = self._conn.execute("DELETE FROM samples WHERE at < ?", (cutoff,))
            deleted = cur.rowcount
            cur = self._conn.execute(
                "DELETE FROM samples WHERE id IN (SELECT id FROM samples ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (self.config.max_samples,),
            )
            return deleted + cur.rowcount

    def flush(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)
        with self._lock:
            self._conn.close()

    # -- reading (postmortems, CLI) ------------------------------------------------------------

    def samples(
        self, start: float, end: float, limit: int = 50, bad_only: bool = True, slo: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored samples between two epoch times, newest first, with findings decoded.

        With `slo`, only the exchanges that SLO counted as bad events; each row's `slos` lists them all.
        """
        sql = "SELECT * FROM samples WHERE at >= ? AND at <= ?" + (" AND bad = 1" if bad_only else "")
        args: list[Any] = [start, end]
        if slo is not None:
            sql += " AND instr(slos, ?) > 0"
            args.append(f"|{slo}|")
        with self._lock:
            cur = self._conn.execute(sql + " ORDER BY at DESC LIMIT ?", (*args, limit))
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["labels"] = json.loads(r["labels"])
            r["findings"] = json.loads(r["findings"])
            r["slos"] = [name for name in str(r.get("slos") or "").split("|") if name]
        return rows

    def count(self, start: float, end: float, bad_only: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM samples WHERE at >= ? AND at <= ?" + (" AND bad = 1" if bad_only else "")
        with self._lock:
            return int(self._conn.execute(sql, (start, end)).fetchone()[0])


def _finding(f: Finding, redact: Callable[[str], str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "detector": f.detector,
        "name": f.name,
        "score": f.score,
        "label": f.label,
        "features": [[n, v] for n, v in f.features],
    }
    if redact is not None:  # content stored
        out["explanation"] = redact(f.explanation)
        out["evidence"] = [redact(s.text) for s in f.evidence]
    return out


def connect_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
