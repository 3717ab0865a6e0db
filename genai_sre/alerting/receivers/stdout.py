"""Writes one human-readable line per notification to standard output (the embedded default)."""

from __future__ import annotations

import sys
from typing import TextIO

from genai_sre.alerting.notification import Notification, format_time

__all__ = ["StdoutReceiver", "format_line"]


def format_line(n: Notification) -> str:
    labels, ann = n.common_labels, n.common_annotations
    parts = [
        format_time(n.sent_at),
        "RESOLVED" if n.status == "resolved" else labels.get("severity", "firing").upper(),
        labels.get("alertname", "alert"),
        f"slo={labels['slo']}" if "slo" in labels else "",
        f"burn_rate={ann['burn_rate']}" if "burn_rate" in ann else "",
        f"budget_remaining={ann['budget_remaining']}" if "budget_remaining" in ann else "",
        f"firing={len(n.firing)} resolved={len(n.resolved)}",
        f"- {ann['summary']}" if "summary" in ann else "",
    ]
    return " ".join(p for p in parts if p)


class StdoutReceiver:
    def __init__(self, *, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, notification: Notification) -> None:
        stream = self._stream or sys.stdout
        stream.write(format_line(notification) + "\n")
        stream.flush()
