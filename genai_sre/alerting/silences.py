"""Silences: label matchers that mute firing alerts until they expire.

Kept in memory and, when a path is given, in a small JSON file written
atomically (temporary file, fsync, rename), so silences survive a restart.
The file may be changed by another process (`genai-sre silences add` while the
sidecar runs): changes take a lock file (`fcntl.flock`), re-read the file,
modify and write it back, and readers pick up a newer file by its modification
time. Expired silences are dropped on the next change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genai_sre.alerting.matchers import Matcher, matches_all, parse_matchers
from genai_sre.errors import StorageError

__all__ = ["Silence", "Silences"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_at: float = 0.0

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["matchers"] = list(self.matchers)
        return data


class Silences:
    """The set of silences, optionally persisted to `path`."""

    def __init__(self, clock: Callable[[], float], path: str | Path | None = None) -> None:
        self._clock = clock
        self._path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._items: dict[str, Silence] = {}
        self._parsed: dict[str, tuple[Matcher, ...]] = {}
        self._mtime: int | None = None
        self._refresh()

    def add(
        self, matchers: Sequence[str], *, ends_at: float, starts_at: float | None = None, comment: str = ""
    ) -> Silence:
        """Create a silence; ValueError when a matcher is malformed or it would never be active."""
        now = self._clock()
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        parsed = parse_matchers(matchers)
        start = now if starts_at is None else starts_at
        if ends_at <= start or ends_at <= now:
            raise ValueError("a silence must end in the future and after it starts")
        silence = Silence(uuid.uuid4().hex[:12], tuple(matchers), start, ends_at, comment, now)
        with self._changing():
            self._items[silence.id] = silence
            self._parsed[silence.id] = parsed
            self._save(now)
        logger.info("silence %s added until %s: %s", silence.id, ends_at, ", ".join(matchers))
        return silence

    def expire(self, silence_id: str) -> bool:
        """End a silence now. False when no such silence exists."""
        now = self._clock()
        with self._changing():
            if silence_id not in self._items:
                return False
            del self._items[silence_id]
            self._parsed.pop(silence_id, None)
            self._save(now)
        logger.info("silence %s expired", silence_id)
        return True

    def list(self, include_expired: bool = False) -> list[Silence]:
        now = self._clock()
        with self._lock:
            self._refresh()
            items = list(self._items.values())
        return sorted((s for s in items if include_expired or now < s.ends_at), key=lambda s: s.ends_at)

    def silenced_by(self, labels: Mapping[str, str], now: float | None = None) -> str | None:
        """The id of an active silence matching `labels`, or None."""
        t = self._clock() if now is None else now
        with self._lock:
            self._refresh()
            for sid, silence in self._items.items():
                if silence.active(t) and matches_all(self._parsed[sid], labels):
                    return sid
        return None

    # -- persistence ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        with self._lock:
            if self._path is None:
                yield
                return
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                lock = open(self._path.with_suffix(self._path.suffix + ".lock"), "a")
            except OSError as exc:
                raise StorageError(f"cannot lock silences file {str(self._path)!r}: {exc}") from exc
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._refresh()
                yield
            finally:
                lock.close()  # releases the flock

    def _refresh(self) -> None:
        if self._path is None:
            return
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot read silences from {str(self._path)!r}: {exc}") from exc
        if mtime != self._mtime:
            self._load(self._path)
            self._mtime = mtime

    def _load(self, path: Path) -> None:
        items: dict[str, Silence] = {}
        parsed: dict[str, tuple[Matcher, ...]] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for item in raw.get("silences", []):
                silence = Silence(
                    id=str(item["id"]),
                    matchers=tuple(str(m) for m in item["matchers"]),
                    starts_at=float(item["starts_at"]),
                    ends_at=float(item["ends_at"]),
                    comment=str(item.get("comment", "")),
                    created_at=float(item.get("created_at", 0.0)),
                )
                parsed[silence.id] = parse_matchers(silence.matchers)
                items[silence.id] = silence
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(f"cannot read silences from {str(path)!r}: {exc}") from exc
        self._items, self._parsed = items, parsed

    def _save(self, now: float) -> None:
        for sid in [sid for sid, s in self._items.items() if s.ends_at <= now]:
            del self._items[sid]
            self._parsed.pop(sid, None)
        if self._path is None:
            return
        body = json.dumps({"silences": [s.to_json() for s in self._items.values()]}, indent=1)
        tmp = self._path.with_suffix(self._path.suffix + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
            self._mtime = self._path.stat().st_mtime_ns
        except OSError as exc:
            raise StorageError(f"cannot write silences to {str(self._path)!r}: {exc}") from exc
