from __future__ import annotations

import asyncio

import pytest

from genai_sre.pipeline.queue import CaptureQueue


def test_bounded_by_count_and_bytes_and_drops_are_counted() -> None:
    async def run() -> None:
        q: CaptureQueue[bytes] = CaptureQueue(3, max_bytes=10, size=len)
        assert q.offer(b"aaaa") and q.offer(b"bbbb")
        assert not q.offer(b"ccc")  # 11 bytes > 10
        assert q.offer(b"cc") and not q.offer(b"")  # count bound
        assert (q.offered, q.dropped, q.bytes, len(q)) == (5, 2, 10, 3)
        assert await q.take_batch(2) == [b"aaaa", b"bbbb"]
        assert q.bytes == 2 and q.offer(b"dddddddd")

    asyncio.run(run())


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CaptureQueue(0)
