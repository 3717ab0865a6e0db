"""The proxy port: accept connections, sweep deadlines, drain on shutdown.

Shutdown follows what a pod needs (Envoy's drain, nginx's graceful quit):

1. `drain()`: readiness turns false at once (`ready` is False, so `/readyz`
   answers 503 and the Service stops sending new work), while new connections
   are still accepted and served for `proxy.drain_s`: the application beside
   the sidecar is usually still finishing its own requests.
2. `close()`: listening stops; idle keep-alive connections are closed, open
   requests (streams included) finish, up to `proxy.shutdown_grace_s`, and
   whatever is still open after that is cut.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from genai_sre.config import ProxyConfig
from genai_sre.errors import ListenError
from genai_sre.proxy.connection import ClientConnection, Request

__all__ = ["Limits", "ProxyServer"]

logger = logging.getLogger(__name__)

SWEEP_S = 0.25


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_header_bytes: int
    max_target_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    keepalive_timeout_s: float

    @classmethod
    def of(cls, config: ProxyConfig) -> Limits:
        return cls(
            max_body_bytes=config.max_body_bytes,
            max_header_bytes=config.max_header_bytes,
            max_target_bytes=config.max_target_bytes,
            header_timeout_s=config.header_timeout_s,
            body_timeout_s=config.body_timeout_s,
            keepalive_timeout_s=config.keepalive_timeout_s,
        )


class ProxyServer:
    """Owns the listening socket(s) and the client connections; requests go to `handler`."""

    def __init__(
        self,
        config: ProxyConfig,
        handler: Callable[[Request, ClientConnection], None],
        refused: Callable[[str, int, bytes], None],
        sweep: Callable[[float], None] = lambda now: None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.limits = Limits.of(config)
        self.handle = handler
        self.refused = refused
        self._sweep_upstreams = sweep
        self.wall = wall  # epoch seconds of a request's start (injectable, as the rest of the sidecar's clocks)
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.closing = False
        self.port = config.port
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Can forward: listening and not draining."""
        return bool(self._servers) and not self.draining and not self.closing

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on the configured address, or on an already bound socket (from a supervisor)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(lambda: ClientConnection(self), sock=sock, backlog=1024)
        else:
            try:
                server = await loop.create_server(
                    lambda: ClientConnection(self),
                    self.config.host,
                    self.config.port,
                    reuse_address=True,
                    backlog=1024,
                )
            except OSError as exc:
                raise ListenError.of("proxy port", self.config.host, self.config.port, exc) from None
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        for s in server.sockets:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sweeper = loop.create_task(self._sweep(), name="genai-sre-proxy-sweep")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            try:
                for conn in list(self.connections):
                    conn.expire(now)
                self._sweep_upstreams(now)
            except Exception:  # isolation boundary: the sweep must keep running
                logger.exception("proxy sweep failed")

    def drain(self) -> None:
        """Readiness off; keep accepting and serving (see the module docstring)."""
        self.draining = True

    async def close(self, grace_s: float) -> None:
        """Stop listening, let open requests finish for `grace_s`, then cut what is left."""
        self.closing = True
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        deadline = time.monotonic() + grace_s
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            for conn in list(self.connections):
                conn.close_if_idle()
        for conn in list(self.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 1.0)
            except (TimeoutError, Exception):  # noqa: BLE001 - closing must go on
                pass
        self._servers.clear()
