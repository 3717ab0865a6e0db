"""A bounded queue whose `offer()` never blocks: monitoring may fall behind, never the traffic."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["CaptureQueue"]

T = TypeVar("T")


class CaptureQueue(Generic[T]):
    """Single-loop bounded FIFO. `offer()` returns False and counts a drop when full."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self.offered = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        self.offered += 1
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            return False
        self._items.append(item)
        self._ready.set()
        return True

    async def take_batch(self, max_items: int) -> list[T]:
        """Wait until something is queued, then take up to `max_items`."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        n = min(max_items, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    def drain(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items
