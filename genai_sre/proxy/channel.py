"""Proxy worker ⇄ agent: captures, counters and fail-over over a Unix socket that never makes a worker wait.

Frames are a 4-byte big-endian length and a pickle of one message. Worker to
agent: `("captures", [values, ...])` (each `Capture` as a tuple of plain values:
pickling the dataclass itself costs ten times as much; a worker collects the
captures of up to `BATCH_DELAY_S` and sends them in one frame and one write, off
the path of the next request), `("stats", worker_id, state,
Snapshot)` and `("event", worker_id, FailoverEvent)` (a breaker opened or
closed). Agent to worker: `("failover", {upstream: reason})`, the upstreams an
SLO page holds failed over, sent to every worker on each change and to a
worker as soon as it connects. Only the supervisor's own child processes can
reach the socket (it lives in a private 0700 directory), so each side trusts
what it unpickles.

The worker side (`ChannelClient`) writes through an asyncio transport: when
more than `max_buffer` bytes wait unsent (the agent is slow, stopped or being
replaced), a capture is dropped and counted instead, and a lost connection is
retried in the background. Counters travel as cumulative snapshots, so the
agent's totals stay exact whatever is dropped; only scoring loses captures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from genai_sre.events import Capture, Classification, TraceIds
from genai_sre.proxy.failover import FailoverEvent
from genai_sre.proxy.stats import ProxyStats, Snapshot

__all__ = ["ChannelClient", "ChannelServer", "Intake"]

logger = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
MAX_FRAME = 64 << 20
MAX_PENDING_EVENTS = 256  # fail-over events kept while the agent is unreachable
BATCH_DELAY_S = 0.002  # captures wait at most this long to share a frame and a write
MAX_BATCH = 64  # captures per frame at most
MAX_BATCH_BYTES = 1 << 20  # body bytes per frame at most (a single larger capture goes alone)


class _Frames:
    """Splits a byte stream into unpickled messages."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes, handle: Callable[[tuple[Any, ...]], None]) -> bool:
        """Hand each complete message to `handle`; False when a frame is too large (close the connection)."""
        self.buf += data
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > MAX_FRAME:
                logger.error("channel frame of %d bytes refused; closing the connection", n)
                self.buf = bytearray()
                return False
            if len(buf) - pos - 4 < n:
                break
            frame = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            try:
                handle(pickle.loads(frame))
            except Exception:  # isolation boundary: one bad message must not stop the intake
                logger.exception("channel message could not be handled")
        if pos:
            del buf[:pos]
        return True


def _frame(message: tuple[Any, ...]) -> tuple[bytes, bytes]:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)), data


_CAPTURE = tuple(f.name for f in dataclasses.fields(Capture))
_TRACE = tuple(f.name for f in dataclasses.fields(TraceIds))
_KIND = tuple(f.name for f in dataclasses.fields(Classification))


def encode_capture(c: Capture) -> tuple[Any, ...]:
    """A Capture as plain values (a tenth of the cost of pickling the dataclass itself)."""
    values: list[Any] = []
    for name in _CAPTURE:
        v = getattr(c, name)
        if isinstance(v, TraceIds | Classification):
            v = tuple(getattr(v, n) for n in (_TRACE if isinstance(v, TraceIds) else _KIND))
        elif name in ("request_headers", "response_headers", "labels"):
            v = dict(v)
        values.append(v)
    return tuple(values)


def decode_capture(values: tuple[Any, ...]) -> Capture:
    fields = dict(zip(_CAPTURE, values, strict=True))
    if fields["trace"] is not None:
        fields["trace"] = TraceIds(*fields["trace"])
    if fields["classification"] is not None:
        fields["classification"] = Classification(*fields["classification"])
    return Capture(**fields)


class Intake:
    """What the agent does with each message (the in-process sidecar calls it directly)."""

    def __init__(
        self,
        on_capture: Callable[[Capture], bool],
        on_stats: Callable[[str, str, Snapshot], None],
        on_event: Callable[[str, FailoverEvent], None] | None = None,
    ) -> None:
        self.on_capture = on_capture
        self.on_stats = on_stats
        self.on_event = on_event
        self.greeting: Callable[[], list[tuple[Any, ...]]] | None = None  # messages for a worker that connects

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "captures":
            for values in message[1]:
                self.on_capture(decode_capture(values))
        elif kind == "stats":
            self.on_stats(message[1], message[2], message[3])
        elif kind == "event" and self.on_event is not None:
            self.on_event(message[1], message[2])


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, client: ChannelClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.frames = _Frames()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:  # control messages from the agent
        if not self.frames.feed(data, self.client._control) and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(self)


class ChannelClient:
    """The worker's end: `offer()` never blocks; `send_stats()` ships the cumulative counters."""

    def __init__(self, path: str, worker_id: str, stats: ProxyStats, max_buffer: int = 32 << 20) -> None:
        self.path = path
        self.worker_id = worker_id
        self.stats = stats
        self.max_buffer = max_buffer
        self.on_control: Callable[[tuple[Any, ...]], None] | None = None  # messages from the agent
        self.on_connected: Callable[[], list[FailoverEvent]] | None = None  # state to report again on connect
        self._pending: deque[FailoverEvent] = deque(maxlen=MAX_PENDING_EVENTS)
        self._batch: list[Capture] = []  # offered, not yet written (see BATCH_DELAY_S)
        self._batch_bytes = 0
        self._flush_at: asyncio.TimerHandle | None = None
        self._proto: _ClientProtocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._proto is not None and self._proto.transport is not None

    def start(self) -> None:
        self._reconnect()

    def _reconnect(self) -> None:
        if self._closed or (self._connecting is not None and not self._connecting.done()):
            return
        self._connecting = asyncio.get_running_loop().create_task(self._connect(), name="genai-sre-channel")

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.05
        while not self._closed:
            try:
                _, proto = await loop.create_unix_connection(lambda: _ClientProtocol(self), self.path)
                self._proto = proto
                self._flush_events(replay=True)
                return
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _lost(self, proto: _ClientProtocol) -> None:
        if self._proto is proto:
            self._proto = None
        self._reconnect()

    def _write(self, message: tuple[Any, ...]) -> bool:
        proto = self._proto
        transport = proto.transport if proto is not None else None
        if transport is None or transport.is_closing():
            return False
        transport.writelines(_frame(message))
        return True

    def _control(self, message: tuple[Any, ...]) -> None:
        if self.on_control is not None:
            self.on_control(message)

    def send_event(self, event: FailoverEvent) -> bool:
        """A fail-over event: sent now, or kept (bounded) until the agent is reachable again."""
        self._pending.append(event)
        return self._flush_events()

    def _flush_events(self, replay: bool = False) -> bool:
        while self._pending:
            if not self._write(("event", self.worker_id, self._pending[0])):
                return False
            self._pending.popleft()
        if replay and self.on_connected is not None:  # the agent may be a new one: tell it the open breakers
            for event in self.on_connected():
                self._write(("event", self.worker_id, event))
        return True

    def offer(self, capture: Capture) -> bool:
        proto = self._proto
        transport = proto.transport if proto is not None else None
        if transport is None:
            self.stats.inc("genai_sre_proxy_captures_dropped", ("agent_unavailable",))
            return False
        if transport.get_write_buffer_size() > self.max_buffer:
            self.stats.inc("genai_sre_proxy_captures_dropped", ("channel_full",))
            return False
        self._batch.append(capture)
        self._batch_bytes += len(capture.request_body) + len(capture.response_body)
        if len(self._batch) >= MAX_BATCH or self._batch_bytes >= MAX_BATCH_BYTES:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(BATCH_DELAY_S, self.flush)
        return True

    def flush(self) -> None:
        """Write the offered captures as one frame (a lost connection drops them, counted)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if batch and not self._write(("captures", [encode_capture(c) for c in batch])):
            self.stats.inc("genai_sre_proxy_captures_dropped", ("agent_unavailable",), len(batch))

    def send_stats(self, state: str) -> bool:
        """Counters get through unless the agent has stopped reading (they are cumulative: the next one will)."""
        proto = self._proto
        transport = proto.transport if proto is not None else None
        if transport is None or transport.get_write_buffer_size() > 2 * self.max_buffer:
            return False
        return self._write(("stats", self.worker_id, state, self.stats.snapshot()))

    async def aclose(self) -> None:
        self.flush()
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        proto = self._proto
        if proto is not None and proto.transport is not None:
            transport = proto.transport
            for _ in range(100):  # let what is buffered reach the agent (up to a second)
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
            transport.close()


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, server: ChannelServer) -> None:
        self.server = server
        self.intake = server.intake
        self.frames = _Frames()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.workers.add(self.transport)
        greeting = self.intake.greeting
        for message in greeting() if greeting is not None else ():
            self.transport.writelines(_frame(message))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.workers.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if not self.frames.feed(data, self.intake.handle):
            return  # the rest of this connection's bytes are dropped, as before


class ChannelServer:
    """The agent's end: accept worker connections on an inherited listening Unix socket."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.workers: set[asyncio.Transport] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ServerProtocol(self), sock=sock)

    def broadcast(self, message: tuple[Any, ...]) -> None:
        """Send a control message to every connected worker (small and rare: never held back)."""
        header, data = _frame(message)
        for transport in list(self.workers):
            if not transport.is_closing():
                transport.writelines((header, data))

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
