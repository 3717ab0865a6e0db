"""Append-only JSON-lines files that stay bounded: size-based rotation and age-based deletion.

`RotatingFile(path, max_bytes, keep, max_age_days)` appends lines to `path`.
Before a line would take the file past `max_bytes`, the file becomes
`path.1` (the previous `path.1` becomes `path.2`, and so on; `path.<keep>`
is deleted), so at most `keep + 1` files of about `max_bytes` each exist.
Rotated files whose last write is older than `max_age_days` are deleted
too (checked at each rotation and at most hourly otherwise). `max_bytes: 0`
turns rotation off, `max_age_days: 0` the age limit. Appends from several
threads are serialised by a lock; a line is never split across files.

The alert file receiver (`alerts.jsonl`) and the delivery log
(`deliveries.jsonl`) write through it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

__all__ = ["RotatingFile"]

_AGE_CHECK_S = 3600.0


class RotatingFile:
    def __init__(
        self, path: str | Path, max_bytes: int = 10 * 1024 * 1024, keep: int = 5, max_age_days: float = 0.0,
        fsync: bool = False,
    ) -> None:
        if max_bytes < 0 or keep < 0 or max_age_days < 0:
            raise ValueError("max_bytes, keep and max_age_days must not be negative")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.max_age_s = max_age_days * 86400.0
        self.fsync = fsync
        self._lock = threading.Lock()
        self._last_age_check = 0.0

    def rotated(self) -> list[Path]:
        """The rotated files that exist, newest first."""
        return [p for i in range(1, self.keep + 1) if (p := self._nth(i)).exists()]

    def append(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.max_bytes:
                try:
                    size = self.path.stat().st_size
                except FileNotFoundError:
                    size = 0
                if size and size + len(data) > self.max_bytes:
                    self._rotate()
            if self.max_age_s and time.monotonic() - self._last_age_check > _AGE_CHECK_S:
                self._prune_old()
            with open(self.path, "ab") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())

    def _nth(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _rotate(self) -> None:
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
            return
        self._nth(self.keep).unlink(missing_ok=True)
        for i in range(self.keep - 1, 0, -1):
            if self._nth(i).exists():
                os.replace(self._nth(i), self._nth(i + 1))
        os.replace(self.path, self._nth(1))
        if self.max_age_s:
            self._prune_old()

    def _prune_old(self) -> None:
        self._last_age_check = time.monotonic()
        cutoff = time.time() - self.max_age_s
        for p in self.rotated():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except FileNotFoundError:
                pass
