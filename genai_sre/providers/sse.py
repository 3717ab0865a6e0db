"""Server-sent events, parsed from captured bytes with the byte offset of each event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEEvent", "iter_events", "time_at"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    end: int  # byte offset just past the event in the response body

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def iter_events(body: bytes) -> Iterator[SSEEvent]:
    """Yield complete events (a blank line ends one); a trailing partial event is ignored."""
    pos = 0
    n = len(body)
    # Events end at "\n\n" or "\r\n\r\n". Each separator is searched again only once the
    # position has passed it, so a stream using one kind is parsed in linear time.
    next_lf = body.find(b"\n\n")
    next_crlf = body.find(b"\r\n\r\n")
    while pos < n:
        if 0 <= next_lf < pos:
            next_lf = body.find(b"\n\n", pos)
        if 0 <= next_crlf < pos:
            next_crlf = body.find(b"\r\n\r\n", pos)
        candidates = [e for e in ((next_lf, 2), (next_crlf, 4)) if e[0] >= 0]
        if not candidates:
            return
        end, sep = min(candidates)
        block = body[pos:end].decode("utf-8", "replace")
        pos = end + sep
        event = "message"
        data_lines: list[str] = []
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data_lines.append(value)
        if data_lines or event != "message":
            yield SSEEvent(event=event, data="\n".join(data_lines), end=pos)


def time_at(offset: int, chunks: tuple[tuple[int, float], ...]) -> float | None:
    """The monotonic time at which the byte at `offset` had arrived (first chunk ending at or past it)."""
    for end, t in chunks:
        if end >= offset:
            return t
    return chunks[-1][1] if chunks else None
