"""The worker → agent channel: captures and counters survive the trip exactly."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

from genai_sre.events import Capture, Classification, TraceIds
from genai_sre.proxy.channel import ChannelClient, ChannelServer, Intake, decode_capture, encode_capture
from genai_sre.proxy.stats import ProxyStats, Snapshot
from tests.factories import capture


def test_a_capture_round_trips_through_its_encoding() -> None:
    c = capture(
        trace=TraceIds("a" * 32, "b" * 16, "c" * 16, parent_span_id="d" * 16, sampled=False, tracestate="x=1"),
        classification=Classification("vllm", "chat", "openai", "llm.internal", 8000),
        labels={"model": "gpt-4o", "tenant": "acme"},
        chunks=((10, 1.5), (20, 2.5)),
        error="cut",
    )
    assert decode_capture(encode_capture(c)) == c
    bare = capture()
    assert decode_capture(encode_capture(bare)) == bare


def test_captures_and_counters_reach_the_agent() -> None:
    got: list[Capture] = []
    stats_seen: list[tuple[str, str, Snapshot]] = []

    async def main() -> None:
        path = str(Path(tempfile.mkdtemp()) / "agent.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen()
        intake = Intake(lambda c: got.append(c) is None, lambda w, s, snap: stats_seen.append((w, s, snap)))
        server = ChannelServer(intake)
        await server.start(listener)
        stats = ProxyStats()
        key = ("up", "/v1/chat/completions", "m", "2xx", "none", "none")
        stats.inc("genai_sre_requests", key, 3)
        client = ChannelClient(path, "0-1", stats, max_buffer=64 << 10)
        client.start()
        for _ in range(100):
            if client.connected:
                break
            await asyncio.sleep(0.01)
        assert client.offer(capture(id="one"))
        assert client.send_stats("serving")
        for _ in range(100):
            if got and stats_seen:
                break
            await asyncio.sleep(0.01)
        assert [c.id for c in got] == ["one"]
        assert stats_seen[0][:2] == ("0-1", "serving")
        assert stats_seen[0][2].counters["genai_sre_requests"][key] == 3
        await server.aclose()
        await client.aclose()

    asyncio.run(main())


def test_captures_offered_together_share_frames_in_order_and_close_flushes_them() -> None:
    got: list[str] = []
    frames: list[int] = []

    class Counting(Intake):
        def handle(self, message: tuple[object, ...]) -> None:
            if message[0] == "captures":
                frames.append(len(message[1]))  # type: ignore[arg-type]
            super().handle(message)

    async def main() -> None:
        path = str(Path(tempfile.mkdtemp()) / "agent.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen()
        server = ChannelServer(Counting(lambda c: got.append(c.id) is None, lambda w, s, snap: None))
        await server.start(listener)
        client = ChannelClient(path, "0-1", ProxyStats())
        client.start()
        for _ in range(100):
            if client.connected:
                break
            await asyncio.sleep(0.01)
        for i in range(150):  # one loop turn: batches of at most MAX_BATCH (64)
            assert client.offer(capture(id=f"c{i}"))
        await asyncio.sleep(0.05)
        assert client.offer(capture(id="last"))
        await client.aclose()  # before the batch delay: closing writes what waits
        for _ in range(100):
            if len(got) == 151:
                break
            await asyncio.sleep(0.01)
        await server.aclose()

    asyncio.run(main())
    assert got == [f"c{i}" for i in range(150)] + ["last"]
    assert frames == [64, 64, 22, 1]
