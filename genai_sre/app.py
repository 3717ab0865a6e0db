"""The whole sidecar in one process: a proxy worker and the agent on one event loop.

`genai-sre serve` runs them as separate processes (`genai_sre.supervisor`);
this composition is for `genai-sre serve --single-process`, the demo and the
tests. The two halves are built exactly as in their own processes
(`build_proxy`, `build_agent`); only the uplink between them differs: here the
worker hands captures and counters to the agent by a direct call.

Attributes not defined here (`sinks`, `pipeline`, `slo_engine`, `alerting`,
`evaluate_now`, ...) are the agent's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from genai_sre.agent import Agent, build_agent, build_detector_slots
from genai_sre.config import Config
from genai_sre.events import Capture
from genai_sre.proxy.failover import FailoverEvent
from genai_sre.proxy.forward import Forwarder
from genai_sre.proxy.listener import ProxyServer
from genai_sre.proxy.stats import ProxyStats
from genai_sre.proxy.worker import ProxyWorker, build_proxy

__all__ = ["Sidecar", "build_detector_slots"]

logger = logging.getLogger(__name__)


class LocalUplink:
    """The worker's uplink when the agent runs in the same process and loop."""

    def __init__(self, agent: Agent, worker_id: str, stats: ProxyStats) -> None:
        self.agent = agent
        self.worker_id = worker_id
        self.stats = stats

    def offer(self, capture: Capture) -> bool:
        return self.agent.pipeline.offer(capture)

    def send_stats(self, state: str) -> bool:
        self.agent.intake.update(self.worker_id, state, self.stats.snapshot())
        return True

    def send_event(self, event: FailoverEvent) -> bool:
        self.agent.channel.handle(("event", self.worker_id, event))
        return True


class Sidecar:
    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.agent = build_agent(config, registry, wall, shares_proxy_loop=True)
        self.stats = ProxyStats()
        self.worker: ProxyWorker = build_proxy(config, LocalUplink(self.agent, "local", self.stats), self.stats,
                                               wall=wall)
        self.agent.refresh = self.worker.flush_stats
        self.agent.local_control.append(self.worker.control)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    @property
    def forwarder(self) -> Forwarder:
        return self.worker.forwarder

    @property
    def proxy(self) -> ProxyServer:
        return self.worker.server

    @property
    def proxy_port(self) -> int:
        return self.worker.port

    def refresh_stats(self) -> None:
        self.worker.flush_stats()

    async def start(self) -> None:
        await self.agent.start()
        greeting = self.agent.channel.greeting
        for message in greeting() if greeting is not None else ():  # the fail-over state, as a new worker hears it
            self.worker.control(message)
        try:
            await self.worker.start()
        except Exception:
            await self.agent.stop()
            raise
        self.worker.flush_stats()
        logger.info(
            "genai-sre serving",
            extra={
                "proxy": f"http://{self.config.proxy.host}:{self.proxy_port}",
                "admin": f"http://{self.config.admin.host}:{self.agent.admin_port}",
                "upstreams": ",".join(f"{u.name}={u.url}" for u in self.config.upstreams),
            },
        )

    async def stop(self, grace_s: float | None = None, drain_s: float = 0.0) -> None:
        """Drain (readiness off, still serving) for `drain_s`, stop listening, let open requests finish."""
        grace = self.config.proxy.shutdown_grace_s if grace_s is None else grace_s
        self.worker.drain()
        if drain_s > 0:
            await asyncio.sleep(drain_s)
        await self.worker.stop(grace)
        await self.agent.stop()

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain and shut down gracefully."""
        await self.start()
        # Everything loaded so far (models, vocabularies, libraries) lives as long as the process:
        # keep it out of the garbage collector's full passes, which would otherwise pause forwarding.
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logger.info(
            "shutting down",
            extra={"drain_s": self.config.proxy.drain_s, "grace_s": self.config.proxy.shutdown_grace_s},
        )
        await self.stop(drain_s=self.config.proxy.drain_s)
