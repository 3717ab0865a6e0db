"""A bounded queue whose `offer()` never blocks: monitoring may fall behind, never the traffic."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CaptureQueue"]

T = TypeVar("T")


class CaptureQueue(Generic[T]):
    """Single-loop FIFO bounded by item count and by bytes. `offer()` returns False and counts a drop when full."""

    def __init__(self, maxsize: int, max_bytes: int | None = None, size: Callable[[T], int] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._size = size or (lambda _: 0)
        self._items: deque[tuple[T, int]] = deque()
        self._ready = asyncio.Event()
        self.bytes = 0
        self.offered = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        self.offered += 1
        n = self._size(item)
        if len(self._items) >= self.maxsize or (self.max_bytes is not None and self.bytes + n > self.max_bytes):
            self.dropped += 1
            return False
        self._items.append((item, n))
        self.bytes += n
        self._ready.set()
        return True

    async def take_batch(self, max_items: int) -> list[T]:
        """Wait until something is queued, then take up to `max_items`."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        out = []
        for _ in range(min(max_items, len(self._items))):
            item, n = self._items.popleft()
            self.bytes -= n
            out.append(item)
        return out

    def drain(self) -> list[T]:
        items = [item for item, _ in self._items]
        self._items.clear()
        self.bytes = 0
        return items
