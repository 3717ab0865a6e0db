"""The composition root: the only module that knows every stage.

`Sidecar(config)` builds the metrics, the capture queue, the parser, the
detectors, the pipeline and the proxy; `start()` opens the proxy and admin
listeners; `stop()` stops accepting, lets open streams finish up to the grace
period, drains the pipeline and closes everything.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from genai_sre.admin import build_admin_app
from genai_sre.config import Config
from genai_sre.detection.base import DetectorContext
from genai_sre.detection.runner import DetectorRunner, DetectorSlot
from genai_sre.errors import ListenError
from genai_sre.events import Alert, Capture, Evaluation
from genai_sre.pipeline.queue import CaptureQueue
from genai_sre.pipeline.worker import EvaluationSink, Pipeline
from genai_sre.plugins import build
from genai_sre.providers import ExchangeParser
from genai_sre.proxy.forward import Forwarder
from genai_sre.proxy.intake import ProxyIntake
from genai_sre.proxy.listener import ProxyServer
from genai_sre.proxy.probes import probe_token
from genai_sre.proxy.stats import ProxyStats
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.prometheus import EvaluationMetrics
from genai_sre.telemetry.proxy_collector import ProxyCollector

if TYPE_CHECKING:
    from genai_sre.incidents.stack import AlertingStack
    from genai_sre.slo.engine import SLOEngine
    from genai_sre.storage.samples import SampleStore

__all__ = ["Sidecar", "build_detector_slots"]

logger = logging.getLogger(__name__)

DETECTOR_GROUP = "genai_sre.detectors"


def build_detector_slots(
    config: Config,
    metrics: Metrics,
    wall: Callable[[], float],
    emit: Callable[[Evaluation], None] | None = None,
) -> list[DetectorSlot]:
    slots = []
    data_dir = config.resolve(config.storage.data_dir)
    for d in config.detectors:
        if not d.enabled:
            continue
        ctx = DetectorContext(
            name=d.name,
            clock=wall,
            registry=metrics.registry,
            data_dir=data_dir,
            extra={"metrics": metrics},
            emit=emit,
        )
        detector = build(DETECTOR_GROUP, d.name, d.type, d.options, context=ctx)
        slots.append(
            DetectorSlot(
                name=d.name,
                detector=detector,
                sample_rate=d.sample_rate,
                timeout_s=d.timeout_s or config.pipeline.detector_timeout_s,
                cpu_budget=d.cpu_budget,
            )
        )
    return slots


class Sidecar:
    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.wall = wall
        self.metrics = Metrics(registry)
        self.registry = self.metrics.registry
        self.queue: CaptureQueue[Capture] = CaptureQueue(
            config.pipeline.queue_size,
            config.pipeline.queue_max_bytes,
            size=lambda c: len(c.request_body) + len(c.response_body),
        )
        self.parser = ExchangeParser(config.upstreams, config.labels, capture_limit=config.proxy.capture_limit_bytes)
        self.runner = DetectorRunner(
            build_detector_slots(config, self.metrics, wall, emit=lambda ev: self.pipeline.supplement(ev)),
            self.metrics,
            log_interval_s=config.pipeline.failure_log_interval_s,
        )
        self.pipeline = Pipeline(
            self.queue,
            self.parser.parse,
            self.runner,
            [],
            self.metrics,
            batch_size=config.pipeline.batch_size,
            cpu_budget=config.pipeline.cpu_budget,
            busy=lambda: self.forwarder.in_flight >= config.pipeline.busy_in_flight,
            cpu_budget_under_load=config.pipeline.cpu_budget_under_load,
        )
        self.stats = ProxyStats()
        self.intake = ProxyIntake()
        self.registry.register(ProxyCollector(self.intake.merged))
        self.forwarder = Forwarder(config, self.stats, self.pipeline.offer, probe_token=probe_token(), wall=wall)
        self.proxy = ProxyServer(config.proxy, self.forwarder.handle, self.forwarder.refused, self.forwarder.sweep)
        self.sinks.append(EvaluationMetrics(self.metrics))
        self.admin_routes: list[web.RouteDef] = []
        self.readiness_checks: list[Callable[[], Awaitable[str | None]]] = []  # /readyz/incidents
        self._admin_runner: web.AppRunner | None = None
        self._background: list[asyncio.Task[None]] = []
        self._close_hooks: list[Callable[[], object]] = []
        # Stages wired by `genai_sre.wiring` (None when not configured):
        self.evidence: SampleStore | None = None
        self.slo_engine: SLOEngine | None = None
        self.alerting: AlertingStack | None = None
        self.evaluate_now: Callable[[], Awaitable[None]] | None = None
        self.postmortem_evidence: object | None = None  # samples + SLO figures, for postmortem drafts
        self.recent_alerts: deque[Alert] = deque(maxlen=200)  # SLO alert changes, newest last
        self.proxy_port = config.proxy.port
        self.admin_port = config.admin.port

    @property
    def sinks(self) -> list[EvaluationSink]:
        """Where every evaluated exchange goes; stages append themselves before `start()`."""
        return self.pipeline.sinks

    @property
    def data_dir(self) -> Path:
        return self.config.resolve(self.config.storage.data_dir)

    def refresh_stats(self) -> None:
        """Hand the proxy's counters to the agent side now (on the event loop; also every 0.25 s)."""
        self.intake.update("local", self.stats.snapshot())

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                self.refresh_stats()
            except Exception:  # isolation boundary: the feed must survive a bad turn
                logger.exception("proxy statistics update failed")

    def health(self) -> dict[str, object]:
        """Monitoring health, for `/healthz` (never used for readiness)."""
        return {
            "pipeline": "running" if self.pipeline.running else "stopped",
            "queue_depth": len(self.queue),
            "upstreams": {
                name: {"dns": "ok" if pool.resolver.last_error is None else pool.resolver.last_error}
                for name, pool in self.forwarder.pools.items()
            },
        }

    async def start(self) -> None:
        await self.forwarder.start()
        self.pipeline.start(self.config.pipeline.workers)
        await self.proxy.start()
        self.proxy_port = self.proxy.port
        self.spawn(self._stats_loop(), "genai-sre-proxy-stats")
        admin = build_admin_app(
            self.registry,
            ready=lambda: self.proxy.ready,
            health=self.health,
            refresh=self.refresh_stats,
            extra_routes=self.admin_routes,
            readiness=self.readiness_checks,
        )
        self._admin_runner = web.AppRunner(admin, access_log=None)
        await self._admin_runner.setup()
        site = web.TCPSite(self._admin_runner, self.config.admin.host, self.config.admin.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self.proxy.close(0)
            raise ListenError.of("admin port", self.config.admin.host, self.config.admin.port, exc) from None
        server = site._server  # the bound port when 0 was asked for
        if server is not None and getattr(server, "sockets", None):
            self.admin_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        logger.info(
            "genai-sre serving",
            extra={
                "proxy": f"http://{self.config.proxy.host}:{self.proxy_port}",
                "admin": f"http://{self.config.admin.host}:{self.admin_port}",
                "upstreams": ",".join(f"{u.name}={u.url}" for u in self.config.upstreams),
            },
        )

    def on_close(self, hook: Callable[[], object]) -> None:
        """Call `hook` (sync, or returning an awaitable) at the end of `stop()`, in reverse order."""
        self._close_hooks.append(hook)

    def spawn(self, coro: object, name: str) -> None:
        """Run a background job (SLO evaluation, probes, ...) for the sidecar's lifetime."""
        self._background.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def stop(self, grace_s: float | None = None, drain_s: float = 0.0) -> None:
        """Drain (readiness off, still serving) for `drain_s`, stop listening, let open requests finish."""
        grace = self.config.proxy.shutdown_grace_s if grace_s is None else grace_s
        self.proxy.drain()
        if drain_s > 0:
            await asyncio.sleep(drain_s)
        await self.proxy.close(grace)
        await asyncio.sleep(0)  # bookkeeping of the last requests runs on the next loop turn
        self.refresh_stats()
        await self.pipeline.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.refresh_stats()
        await self.runner.aclose()
        await self.forwarder.aclose()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        for hook in reversed(self._close_hooks):
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # closing one stage must not stop closing the rest
                logger.exception("close hook %r failed", hook)

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
