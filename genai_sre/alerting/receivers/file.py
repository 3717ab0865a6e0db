"""Appends each notification as one JSON line (the webhook v4 payload) to a local file."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from genai_sre.alerting.notification import Notification
from genai_sre.errors import DeliveryError

__all__ = ["FileReceiver"]


class FileReceiver:
    """`path` is relative to the data directory unless absolute."""

    def __init__(self, path: str = "alerts.jsonl", *, data_dir: str | Path = ".", fsync: bool = False) -> None:
        p = Path(path)
        self.path = p if p.is_absolute() else Path(data_dir) / p
        self._fsync = fsync

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            if self._fsync:
                fh.flush()
                os.fsync(fh.fileno())

    async def send(self, notification: Notification) -> None:
        line = json.dumps(notification.to_webhook(), sort_keys=True) + "\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise DeliveryError(f"file: cannot append to {str(self.path)!r}: {exc}") from exc
