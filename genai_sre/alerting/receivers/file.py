"""Appends each notification as one JSON line (the webhook v4 payload) to a local file.

The file rotates by size and ages out (`genai_sre.storage.rotate`): options
`max_bytes` (default 10 MiB; 0 never rotates), `keep` (rotated files kept,
default 5) and `max_age_days` (rotated files older than this are deleted;
default 30, 0 keeps them).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from genai_sre.alerting.notification import Notification
from genai_sre.errors import ConfigError, DeliveryError
from genai_sre.storage.rotate import RotatingFile

__all__ = ["FileReceiver"]


class FileReceiver:
    """`path` is relative to the data directory unless absolute."""

    def __init__(
        self,
        path: str = "alerts.jsonl",
        *,
        data_dir: str | Path = ".",
        fsync: bool = False,
        max_bytes: int = 10 * 1024 * 1024,
        keep: int = 5,
        max_age_days: float = 30.0,
    ) -> None:
        p = Path(path)
        self.path = p if p.is_absolute() else Path(data_dir) / p
        try:
            self._file = RotatingFile(self.path, max_bytes, keep, max_age_days, fsync=fsync)
        except ValueError as exc:
            raise ConfigError(f"file receiver: {exc}") from exc

    def _append(self, line: str) -> None:
        self._file.append(line)

    async def send(self, notification: Notification) -> None:
        line = json.dumps(notification.to_webhook(), sort_keys=True) + "\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise DeliveryError(f"file: cannot append to {str(self.path)!r}: {exc}") from exc
