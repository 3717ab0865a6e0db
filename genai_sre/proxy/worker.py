"""A proxy worker: the forwarding path and nothing else (no SQLite, no disk, no detector, no admin API).

`build_proxy(config, uplink)` constructs its stages in order: the inline
counters, the forwarder (upstream pools, routes, labels), the listener. The
`uplink` takes each bounded `Capture` without waiting (`offer`), the
cumulative counters every `STATS_EVERY_S` (`send_stats`) and each breaker
opening or closing (`send_event`): a `ChannelClient` to the agent process, or
the agent itself when both run in one process. The agent's control messages
(which upstreams an SLO page holds failed over) arrive through `control()`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from genai_sre.config import Config
from genai_sre.events import Capture
from genai_sre.proxy.failover import FailoverEvent
from genai_sre.proxy.forward import Forwarder
from genai_sre.proxy.listener import ProxyServer
from genai_sre.proxy.probes import probe_token
from genai_sre.proxy.stats import ProxyStats

__all__ = ["ProxyWorker", "Uplink", "build_proxy"]

logger = logging.getLogger(__name__)

STATS_EVERY_S = 0.25


class Uplink(Protocol):
    def offer(self, capture: Capture) -> bool: ...

    def send_stats(self, state: str) -> bool: ...

    def send_event(self, event: FailoverEvent) -> bool: ...


class ProxyWorker:
    def __init__(self, config: Config, stats: ProxyStats, forwarder: Forwarder, server: ProxyServer,
                 uplink: Uplink) -> None:
        self.config = config
        self.stats = stats
        self.forwarder = forwarder
        self.server = server
        self.uplink = uplink
        self.heartbeat: Callable[[], None] | None = None  # called with every stats turn (supervised workers)
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def state(self) -> str:
        return "serving" if self.server.ready else "draining"

    async def start(self, sock: socket.socket | None = None) -> None:
        await self.forwarder.start()
        await self.server.start(sock)
        self._loop_task = asyncio.get_running_loop().create_task(self._stats_loop(), name="genai-sre-proxy-stats")

    def flush_stats(self) -> None:
        for name, pool in self.forwarder.pools.items():
            resolvable = 1.0 if pool.resolver.addresses and pool.resolver.last_error is None else 0.0
            self.stats.gauges.setdefault("genai_sre_upstream_resolvable", {})[(name,)] = resolvable
        self.uplink.send_stats(self.state)

    async def _stats_loop(self) -> None:
        while True:
            try:
                self.flush_stats()
                if self.heartbeat is not None:
                    self.heartbeat()
            except Exception:  # isolation boundary: the stats turn must keep running
                logger.exception("proxy statistics turn failed")
            await asyncio.sleep(STATS_EVERY_S)

    def control(self, message: tuple[Any, ...]) -> None:
        """A message from the agent: `("failover", {upstream: reason})`."""
        if message and message[0] == "failover" and isinstance(message[1], dict):
            self.forwarder.failover.apply(message[1])

    def drain(self) -> None:
        self.server.drain()
        self.flush_stats()  # the agent learns at once that this worker no longer takes new work

    async def stop(self, grace_s: float) -> None:
        self.server.drain()
        await self.server.close(grace_s)
        await asyncio.sleep(0)  # bookkeeping of the last requests runs on the next loop turn
        await self.forwarder.aclose()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        self.uplink.send_stats("stopped")

    async def run_until_signal(self, stop: asyncio.Event, sock: socket.socket | None = None) -> None:
        """Serve until `stop` is set; then drain for `proxy.drain_s`, and close."""
        await self.start(sock)
        await stop.wait()
        self.drain()
        await asyncio.sleep(self.config.proxy.drain_s)
        await self.stop(self.config.proxy.shutdown_grace_s)


def build_proxy(
    config: Config,
    uplink: Uplink,
    stats: ProxyStats,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> ProxyWorker:
    forwarder = Forwarder(
        config, stats, uplink.offer, probe_token=probe_token(), clock=clock, wall=wall, on_failover=uplink.send_event
    )
    server = ProxyServer(config.proxy, forwarder.handle, forwarder.refused, forwarder.sweep, wall=wall)
    return ProxyWorker(config, stats, forwarder, server, uplink)


def worker_id(slot: int) -> str:
    """A worker's identity for the agent: a replaced worker is a new one (its counters start at zero)."""
    return f"{slot}-{os.getpid()}"
