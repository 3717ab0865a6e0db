"""`<data_dir>/failover.json`: the agent's fail-over state, for `genai-sre slo status` (no admin token needed).

The agent rewrites the file (atomically, 0600) whenever an upstream fails
over or back, and marks it stopped when it shuts down, so a reader can tell a
current state from a stale one.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["FILENAME", "format_state", "read_state", "write_state"]

FILENAME = "failover.json"


def write_state(data_dir: Path, upstreams: dict[str, Any], running: bool = True) -> None:
    path = data_dir / FILENAME
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    doc = {"saved_at": time.time(), "running": running, "upstreams": upstreams}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The last state written, or None when there is none (no upstream has a fallback) or it is unreadable."""
    try:
        doc = json.loads((data_dir / FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("upstreams"), dict) else None


def _ts(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_state(doc: dict[str, Any]) -> list[str]:
    """Lines for a terminal: one per upstream with a fallback."""
    stale = "" if doc.get("running") else " (the sidecar has stopped: last known state)"
    lines = [f"Fail-over{stale}:"]
    for name, st in sorted(doc["upstreams"].items()):
        if not isinstance(st, dict):
            continue
        if st.get("active"):
            reasons = ", ".join(st.get("reasons") or []) or "?"
            lines.append(
                f"  {name}: FAILED OVER to {st.get('fallback')} since {_ts(st.get('since'))} (reason: {reasons})"
            )
        else:
            lines.append(f"  {name}: serving (fallback {st.get('fallback')} standing by)")
    return lines
