"""Silences: label matchers that mute firing alerts until they expire.

Where silences are kept is a backend:

- the incident store (`store=`), on a primary: a table of the SQLite file or
  of the PostgreSQL database that several primaries share, so a silence made
  through one instance mutes delivery on all of them;
- a small JSON file (`path=`), written atomically (temporary file, fsync,
  rename) under a lock file (`fcntl.flock`), for instances without a store;
- memory only, when neither is given.

Matching (`silenced_by`) reads an in-memory copy and does no I/O, so it is
safe on the event loop; `refresh()` reloads the copy from the backend and is
called off the loop (the router calls it before each flush). `add`, `expire`
and `list` touch the backend: call them off the loop too.
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
from typing import TYPE_CHECKING, Any, Protocol

from genai_sre.alerting.matchers import Matcher, matches_all, parse_matchers
from genai_sre.errors import StorageError

if TYPE_CHECKING:
    from genai_sre.incidents.store import IncidentStore

__all__ = ["Silence", "SilenceBackend", "Silences"]

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

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Silence:
        return cls(
            id=str(item["id"]),
            matchers=tuple(str(m) for m in item["matchers"]),
            starts_at=float(item["starts_at"]),
            ends_at=float(item["ends_at"]),
            comment=str(item.get("comment", "")),
            created_at=float(item.get("created_at", 0.0)),
        )


class SilenceBackend(Protocol):
    def load(self, now: float) -> list[Silence] | None:
        """Silences that have not ended; None when nothing changed since the last load."""
        ...

    def add(self, silence: Silence, now: float) -> None: ...

    def expire(self, silence_id: str, now: float) -> bool: ...


class StoreSilences:
    """Silences in the incident store (the `silences` table)."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def load(self, now: float) -> list[Silence]:
        return [Silence.from_json(row) for row in self.store.silences(now)]

    def add(self, silence: Silence, now: float) -> None:
        self.store.add_silence(silence.to_json())

    def expire(self, silence_id: str, now: float) -> bool:
        return self.store.expire_silence(silence_id, now)


class FileSilences:
    """Silences in a JSON file that other processes (the CLI) may change too."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mtime: int | None = None

    def load(self, now: float, force: bool = False) -> list[Silence] | None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None if self._mtime is None and not force else []
        except OSError as exc:
            raise StorageError(f"cannot read silences from {str(self.path)!r}: {exc}") from exc
        if mtime == self._mtime and not force:
            return None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            items = [Silence.from_json(item) for item in raw.get("silences", [])]
            for silence in items:
                parse_matchers(silence.matchers)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(f"cannot read silences from {str(self.path)!r}: {exc}") from exc
        self._mtime = mtime
        return [s for s in items if s.ends_at > now]

    @contextlib.contextmanager
    def _locked(self, now: float) -> Iterator[dict[str, Silence]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_suffix(self.path.suffix + ".lock"), "a")
        except OSError as exc:
            raise StorageError(f"cannot lock silences file {str(self.path)!r}: {exc}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            items = {s.id: s for s in self.load(now, force=True) or []}
            yield items
            self._save(items)
        finally:
            lock.close()  # releases the flock

    def add(self, silence: Silence, now: float) -> None:
        with self._locked(now) as items:
            items[silence.id] = silence

    def expire(self, silence_id: str, now: float) -> bool:
        with self._locked(now) as items:
            return items.pop(silence_id, None) is not None

    def _save(self, items: Mapping[str, Silence]) -> None:
        body = json.dumps({"silences": [s.to_json() for s in items.values()]}, indent=1)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise StorageError(f"cannot write silences to {str(self.path)!r}: {exc}") from exc


class Silences:
    """The set of silences: an in-memory copy for matching, a backend for keeping them."""

    def __init__(
        self,
        clock: Callable[[], float],
        path: str | Path | None = None,
        *,
        backend: SilenceBackend | None = None,
    ) -> None:
        self._clock = clock
        self.clock = clock
        self.backend: SilenceBackend | None = backend or (FileSilences(path) if path is not None else None)
        self._lock = threading.RLock()
        self._items: dict[str, Silence] = {}
        self._parsed: dict[str, tuple[Matcher, ...]] = {}
        self.refresh()

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
        if self.backend is not None:
            self.backend.add(silence, now)
        with self._lock:
            self._items[silence.id] = silence
            self._parsed[silence.id] = parsed
        logger.info("silence %s added until %s: %s", silence.id, ends_at, ", ".join(matchers))
        return silence

    def expire(self, silence_id: str) -> bool:
        """End a silence now. False when no such silence is running or pending."""
        now = self._clock()
        if self.backend is not None:
            found = self.backend.expire(silence_id, now)
        else:
            with self._lock:
                found = silence_id in self._items and self._items[silence_id].ends_at > now
        with self._lock:
            self._items.pop(silence_id, None)
            self._parsed.pop(silence_id, None)
        if found:
            logger.info("silence %s expired", silence_id)
        return found

    def list(self, include_expired: bool = False) -> list[Silence]:
        """Silences from the backend (reads it: call off the event loop)."""
        self.refresh()
        now = self._clock()
        with self._lock:
            items = list(self._items.values())
        return sorted((s for s in items if include_expired or now < s.ends_at), key=lambda s: s.ends_at)

    def silenced_by(self, labels: Mapping[str, str], now: float | None = None) -> str | None:
        """The id of an active silence matching `labels`, or None. In memory only: no I/O."""
        t = self._clock() if now is None else now
        with self._lock:
            for sid, silence in self._items.items():
                if silence.active(t) and matches_all(self._parsed[sid], labels):
                    return sid
        return None

    def refresh(self) -> None:
        """Reload the in-memory copy from the backend (I/O: call it off the event loop)."""
        if self.backend is None:
            return
        now = self._clock()
        loaded = self.backend.load(now)
        if loaded is None:
            return
        parsed = {s.id: parse_matchers(s.matchers) for s in loaded}
        with self._lock:
            self._items = {s.id: s for s in loaded}
            self._parsed = parsed
