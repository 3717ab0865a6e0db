"""The agent: everything but forwarding, in a process of its own (or beside the proxy, in one loop, for tests).

`build_agent(config)` constructs the stages in order: metrics, the capture
queue, the parser, the detectors, the pipeline, the proxy statistics intake;
`genai_sre.wiring.wire(agent)` then attaches the configured ones (evidence
store, SLOs, alert routing, incidents, OTLP, probes). `start()` opens the admin
port (`/metrics`, `/healthz`, `/readyz`, the admin API) and the channel the
proxy workers write to; `stop()` drains the pipeline and closes every stage.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from genai_sre.admin import build_admin_app
from genai_sre.config import Config
from genai_sre.detection.base import DetectorContext
from genai_sre.detection.runner import DetectorRunner, DetectorSlot, FindingBoard
from genai_sre.errors import ListenError
from genai_sre.events import Alert, Capture, Evaluation
from genai_sre.pipeline.queue import CaptureQueue
from genai_sre.pipeline.worker import EvaluationSink, Pipeline, deliver_supplement
from genai_sre.plugins import build
from genai_sre.providers import ExchangeParser
from genai_sre.proxy.channel import ChannelServer, Intake
from genai_sre.proxy.intake import ProxyIntake
from genai_sre.proxy.routes import BoundedLabel
from genai_sre.session import session_id
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.pricing import load_prices
from genai_sre.telemetry.prometheus import EvaluationMetrics
from genai_sre.telemetry.proxy_collector import ProxyCollector
from genai_sre.telemetry.usage import UsageMetrics

if TYPE_CHECKING:
    from genai_sre.healing.controller import FailoverController
    from genai_sre.incidents.stack import AlertingStack
    from genai_sre.slo.engine import SLOEngine
    from genai_sre.storage.samples import SampleStore

__all__ = ["Agent", "build_agent", "build_detector_slots"]

logger = logging.getLogger(__name__)

DETECTOR_GROUP = "genai_sre.detectors"
WORKER_ALIVE_S = 2.0  # a worker that sent no counters for this long is not counted as serving


def build_detector_slots(
    config: Config,
    metrics: Metrics,
    wall: Callable[[], float],
    emit: Callable[[Evaluation], None] | None = None,
    board: FindingBoard | None = None,
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
            metrics=metrics,
            data_dir=data_dir,
            emit=emit,
            findings=board.of if board is not None else None,
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


class Agent:
    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        queue: CaptureQueue[Capture],
        parser: ExchangeParser,
        runner: DetectorRunner,
        pipeline: Pipeline,
        intake: ProxyIntake,
        wall: Callable[[], float],
    ) -> None:
        self.config = config
        self.wall = wall
        self.metrics = metrics
        self.registry = metrics.registry
        self.queue = queue
        self.parser = parser
        self.runner = runner
        self.pipeline = pipeline
        self.intake = intake
        self.channel = Intake(on_capture=pipeline.offer, on_stats=intake.update)
        self.refresh: Callable[[], None] | None = None  # pulls the proxy's counters now (one-process mode)
        self.admin_routes: list[web.RouteDef] = []
        self.readiness_checks: list[Callable[[], Awaitable[str | None]]] = []  # /readyz/incidents
        self.admin_port = config.admin.port
        self._admin_runner: web.AppRunner | None = None
        self._channel_server: ChannelServer | None = None
        self._background: list[asyncio.Task[None]] = []
        self._close_hooks: list[Callable[[], object]] = []
        # Stages wired by `genai_sre.wiring` (None when not configured):
        self.evidence: SampleStore | None = None
        self.slo_engine: SLOEngine | None = None
        self.alerting: AlertingStack | None = None
        self.evaluate_now: Callable[[], Awaitable[None]] | None = None
        self.postmortem_evidence: object | None = None  # samples + SLO figures, for postmortem drafts
        self.recent_alerts: deque[Alert] = deque(maxlen=200)  # SLO alert changes, newest last
        self.failover: FailoverController | None = None  # fail-over on SLO pages, mitigation records
        self.local_control: list[Callable[[tuple[Any, ...]], None]] = []  # proxy workers in this process

    @property
    def sinks(self) -> list[EvaluationSink]:
        """Where every evaluated exchange goes; stages append themselves before `start()`."""
        return self.pipeline.sinks

    @property
    def data_dir(self) -> Path:
        return self.config.resolve(self.config.storage.data_dir)

    def refresh_stats(self) -> None:
        """Take the proxy's counters as of now, where they live in this process (no-op otherwise)."""
        if self.refresh is not None:
            self.refresh()

    def ready(self) -> bool:
        """Can forward: a proxy worker reported within the last seconds that it is serving."""
        return self.intake.serving(WORKER_ALIVE_S) > 0

    def health(self) -> dict[str, object]:
        """Monitoring health, for `/healthz` (never used for readiness)."""
        merged = self.intake.merged()
        dns = merged.gauges.get("genai_sre_upstream_resolvable", {})
        out: dict[str, object] = {
            "pipeline": "running" if self.pipeline.running else "stopped",
            "queue_depth": len(self.queue),
            "proxy_workers": self.intake.serving(WORKER_ALIVE_S),
            "upstreams": {key[0]: {"dns": "ok" if value else "failing"} for key, value in sorted(dns.items())},
        }
        if self.failover is not None:
            out["failover"] = self.failover.status()
        return out

    def control(self, message: tuple[Any, ...]) -> None:
        """Tell every proxy worker (in other processes and in this one) a control message."""
        if self._channel_server is not None:
            self._channel_server.broadcast(message)
        for deliver in self.local_control:
            deliver(message)

    def on_close(self, hook: Callable[[], object]) -> None:
        """Call `hook` (sync, or returning an awaitable) at the end of `stop()`, in reverse order."""
        self._close_hooks.append(hook)

    def spawn(self, coro: object, name: str) -> None:
        """Run a background job (SLO evaluation, probes, ...) for the agent's lifetime."""
        self._background.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def start_admin(self, sock: socket.socket | None = None) -> None:
        admin = build_admin_app(
            self.registry,
            ready=self.ready,
            health=self.health,
            refresh=self.refresh_stats,
            extra_routes=self.admin_routes,
            readiness=self.readiness_checks,
        )
        self._admin_runner = web.AppRunner(admin, access_log=None)
        await self._admin_runner.setup()
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(self._admin_runner, sock)
        else:
            site = web.TCPSite(self._admin_runner, self.config.admin.host, self.config.admin.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError.of("admin port", self.config.admin.host, self.config.admin.port, exc) from None
        server = site._server  # the bound port when 0 was asked for
        if server is not None and getattr(server, "sockets", None):
            self.admin_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def start(self, admin_sock: socket.socket | None = None, channel_sock: socket.socket | None = None) -> None:
        """Start the pipeline, the channel from the proxy workers (when given a socket) and the admin port."""
        self.pipeline.start(self.config.pipeline.workers)
        if channel_sock is not None:
            self._channel_server = ChannelServer(self.channel)
            await self._channel_server.start(channel_sock)
        await self.start_admin(admin_sock)

    async def stop(self) -> None:
        if self._channel_server is not None:
            await self._channel_server.aclose()
        await self.pipeline.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.runner.aclose()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        for hook in reversed(self._close_hooks):
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # closing one stage must not stop closing the rest
                logger.exception("close hook %r failed", hook)


def build_agent(
    config: Config,
    registry: CollectorRegistry | None = None,
    wall: Callable[[], float] = time.time,
    shares_proxy_loop: bool = False,
) -> Agent:
    """The agent's core stages. `shares_proxy_loop`: the proxy forwards on this same event loop
    (`--single-process`): the pipeline then shrinks its CPU budget while requests are in flight."""
    metrics = Metrics(registry)
    queue: CaptureQueue[Capture] = CaptureQueue(
        config.pipeline.queue_size,
        config.pipeline.queue_max_bytes,
        size=lambda c: len(c.request_body) + len(c.response_body),
    )
    parser = ExchangeParser(
        config.upstreams,
        config.labels,
        capture_limit=config.proxy.capture_limit_bytes,
        estimate_tokens=config.telemetry.estimate_tokens,
    )
    model_label = BoundedLabel(config.labels.models, cap=config.labels.max_values)  # exchanges without the proxy's
    sinks: list[EvaluationSink] = [
        EvaluationMetrics(metrics),
        UsageMetrics(metrics, load_prices(config), model_label),  # tokens and spend per model, tenant and app
    ]
    board = FindingBoard()
    runner = DetectorRunner(
        build_detector_slots(config, metrics, wall, emit=functools.partial(deliver_supplement, sinks), board=board),
        metrics,
        log_interval_s=config.pipeline.failure_log_interval_s,
        board=board,
    )
    intake = ProxyIntake(session=session_id())
    metrics.registry.register(ProxyCollector(intake.merged))
    pipeline = Pipeline(
        queue,
        parser.parse,
        runner,
        sinks,
        metrics,
        batch_size=config.pipeline.batch_size,
        cpu_budget=config.pipeline.cpu_budget,
        busy=(lambda: intake.in_flight() >= config.pipeline.busy_in_flight) if shares_proxy_loop else None,
        cpu_budget_under_load=config.pipeline.cpu_budget_under_load,
    )
    return Agent(config, metrics, queue, parser, runner, pipeline, intake, wall)
