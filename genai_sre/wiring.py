"""Stages wired onto the `Agent` from its config: evidence store, SLOs, alerting, incidents, telemetry.

`wire(agent)` is called before `agent.start()`; it appends evaluation
sinks, feeds the proxy's outcome counters to the SLI recorder, mounts admin
routes and registers the background jobs and close hooks. Keeping this here
leaves `agent.py` knowing only the core stages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from genai_sre.agent import Agent
from genai_sre.config import Config
from genai_sre.errors import StorageError
from genai_sre.events import Alert, Evaluation
from genai_sre.storage.files import private_dir
from genai_sre.storage.redact import redact
from genai_sre.storage.samples import SampleStore

__all__ = ["check_files", "page_severities", "wire"]

logger = logging.getLogger(__name__)


@dataclass
class _Evidence:
    """What postmortems read: redacted bad exchanges from the store, SLO figures from the engine."""

    store: SampleStore
    engine: Any = None

    def samples(self, start: float, end: float, limit: int, slo: str | None = None) -> list[dict[str, Any]]:
        return self.store.samples(start, end, limit, slo=slo)

    def slo_figures(self, slo: str, start: float, end: float) -> dict[str, Any] | None:
        return self.engine.figures(slo, start, end) if self.engine is not None else None


@dataclass
class _EvaluationFeed:
    """Adapts the SLI recorder to the pipeline's sink interface."""

    recorder: Any

    def consume(self, evaluation: Evaluation) -> None:
        self.recorder.on_evaluation(evaluation)


async def wire(agent: Agent) -> None:
    """Attach the stages the config enables. Called before `agent.start()`."""
    config = agent.config
    private_dir(agent.data_dir)
    stored = agent.metrics.counter("genai_sre_stored_samples")
    dropped = agent.metrics.counter("genai_sre_evidence_dropped")
    store = SampleStore(
        agent.data_dir,
        config.storage,
        on_stored=stored.inc,
        on_dropped=lambda reason, n: dropped.labels(reason).inc(n),
    )
    agent.sinks.append(store)
    agent.on_close(store.close)
    agent.evidence = store

    from genai_sre.incidents.stack import build_alerting

    evidence = _Evidence(store)
    stack = build_alerting(
        config, clock=agent.wall, metrics=agent.metrics, evidence=evidence, open_on=page_severities(config)
    )
    agent.admin_routes.extend(stack.routes)
    agent.readiness_checks.append(stack.ready)
    agent.alerting = stack
    await stack.start()
    agent.on_close(stack.aclose)
    recorder = _wire_slos(agent, stack.router)
    _wire_failover(agent, recorder)
    evidence.engine = agent.slo_engine
    agent.postmortem_evidence = evidence
    _wire_otlp(agent)
    _wire_probes(agent)


def page_severities(config: Config) -> tuple[str, ...]:
    """The `severity` values that open incidents: the SLO file's page tier (`severities.page`, default `page`)."""
    if not config.slo.file:
        return ("page",)
    from genai_sre.slo.spec import load_slos

    return (load_slos(config.resolve(config.slo.file)).severities.page,)


def _wire_slos(agent: Agent, router: Any) -> Any:
    """The SLO engine, SLI recorder and evaluation loop; returns the recorder (None without an SLO file)."""
    config = agent.config
    if not config.slo.file:
        return None
    from genai_sre.slo.collector import SLOCollector
    from genai_sre.slo.engine import SLOEngine, window_settings
    from genai_sre.slo.sli import SLIRecorder
    from genai_sre.slo.spec import load_slos
    from genai_sre.slo.store import SLOStore

    slos = load_slos(config.resolve(config.slo.file))
    windows = window_settings(slos)
    snapshot_failures = agent.metrics.counter("genai_sre_slo_snapshot_failures")
    engine = SLOEngine(
        slos,
        clock=agent.wall,
        windows=windows,
        store=SLOStore(agent.data_dir / "slo.db"),
        snapshot_interval_s=config.slo.snapshot_interval_s,
        alerting=config.slo.evaluate == "inprocess",
        on_snapshot_error=snapshot_failures.inc,
    )
    # the proxy's accounted outcomes are saved with the windows: a restarted agent never counts them twice
    engine.attach("proxy_intake", agent.intake.state, agent.intake.restore)
    engine.restore()
    agent.registry.register(SLOCollector(engine))
    events = agent.metrics.counter("genai_sre_slo_events")
    good, bad = {}, {}
    for s in slos.slos:  # pre-create both series so rate() sees the first event
        good[s.name] = events.labels(s.name, "good")
        bad[s.name] = events.labels(s.name, "bad")

    def emit(slo: str, ok: bool) -> None:
        child = (good if ok else bad).get(slo)
        (child if child is not None else events.labels(slo, "good" if ok else "bad")).inc()

    recorder = SLIRecorder(slos, emit, engine, clock=agent.wall)
    if agent.evidence is not None:
        agent.evidence.judge = recorder.bad_slos  # samples remember which SLOs counted them as bad
    agent.intake.on_outcomes = recorder.on_request
    agent.sinks.append(_EvaluationFeed(recorder))
    agent.slo_engine = engine

    async def evaluate_now() -> None:
        agent.refresh_stats()  # availability events up to now
        recorder.flush()
        # Alerts first, the snapshot after and off the event loop: a page never waits on, or dies with, the disk.
        alerts = engine.evaluate(snapshot=False)
        if agent.failover is not None:  # SLO pages scoped to an upstream with a fallback move its traffic
            agent.failover.evaluate(engine.status(), alerts)
        for alert in alerts:
            alert = _with_evidence(alert, recorder.evidence(alert.labels.get("slo", "")))
            agent.recent_alerts.append(alert)
            if router is not None:
                try:
                    await router.submit(alert)
                except Exception:  # isolation boundary: one alert that cannot be filed must not drop the others
                    logger.exception("filing alert %s failed", alert.labels.get("alertname", "?"))
        if engine.snapshot_due():
            await asyncio.to_thread(engine.try_snapshot)

    async def loop() -> None:
        while True:
            await asyncio.sleep(config.slo.evaluation_interval_s)
            try:
                await evaluate_now()
            except Exception:  # isolation boundary: the evaluation loop must survive a bad turn
                logger.exception("SLO evaluation failed")

    agent.evaluate_now = evaluate_now
    agent.spawn(loop(), "genai-sre-slo")
    agent.on_close(engine.close)
    return recorder


def _wire_failover(agent: Agent, recorder: Any) -> None:
    """Fail-over for upstreams with a `fallback`: SLO pages, worker breaker events, mitigation annotations."""
    config = agent.config
    if not any(u.fallback is not None for u in config.upstreams):
        return
    from genai_sre.healing.controller import FailoverController, scoped_slos
    from genai_sre.healing.state import write_state

    engine = agent.slo_engine
    controller = FailoverController(
        config.upstreams,
        scoped_slos(engine.slos if engine is not None else None, config.upstreams),
        clock=agent.wall,
        push=lambda wanted: agent.control(("failover", wanted)),
    )
    agent.failover = controller
    agent.channel.on_event = controller.on_worker_event
    agent.channel.greeting = controller.greeting
    if recorder is not None:
        recorder.on_probe = controller.on_probe
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Future[Any]] = set()

    def background(coro: Any) -> None:
        def start() -> None:
            task = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.call_soon_threadsafe(start)

    service = agent.alerting.service if agent.alerting is not None else None

    async def store(annotation: Any) -> None:
        assert service is not None
        try:
            await service.call(service.annotate, annotation)
        except (StorageError, sqlite3.Error) as exc:  # the store is down: the controller's log line keeps it
            logger.warning("mitigation annotation not stored: %s", exc)

    if service is not None:
        controller.record = lambda annotation: background(store(annotation))
    data_dir = agent.data_dir

    async def save(state: dict[str, Any], running: bool = True) -> None:
        try:
            await asyncio.to_thread(write_state, data_dir, state, running)
        except OSError as exc:
            logger.warning("fail-over state not written: %s", exc)

    controller.on_change = lambda state: background(save(state))
    background(save(controller.status()))

    async def watch_workers() -> None:
        while True:
            await asyncio.sleep(1.0)
            controller.forget_workers(agent.intake.live())

    agent.spawn(watch_workers(), "genai-sre-failover")

    async def close() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        await save(controller.status(), running=False)

    agent.on_close(close)


def _with_evidence(alert: Alert, evidence: dict[str, str]) -> Alert:
    """A firing time-slice alert carries its worst finding: groups, metric, gap with its interval, since when."""
    if alert.status != "firing" or not evidence:
        return alert
    # Evidence may quote the answer (an unsupported sentence): it leaves the process redacted only.
    extra = {f"evidence_{k}": redact(v) for k, v in evidence.items() if k != "explanation"}
    if "explanation" in evidence:
        extra["description"] = redact(evidence["explanation"])
    return dataclasses.replace(alert, annotations={**alert.annotations, **extra})


def _wire_otlp(agent: Agent) -> None:
    from genai_sre.telemetry.otlp import build_otlp

    exporter = build_otlp(agent.config, agent.metrics)
    if exporter is not None:
        agent.sinks.append(exporter)
        agent.on_close(exporter.aclose)


PROBE_GROUP = "genai_sre.probes"
PROBE_RUNNER = "counterfactual"  # the entry point of the built-in prober (detectors.bias)


def _wire_probes(agent: Agent) -> None:
    """Counterfactual probes on a schedule, when `probes:` names a file (the prober is an entry point)."""
    config = agent.config
    if not config.probes:
        return
    from genai_sre.plugins import resolve

    runner = resolve(PROBE_GROUP, PROBE_RUNNER).from_file(  # type: ignore[attr-defined]
        str(config.resolve(config.probes)), agent.wall, agent.metrics
    )
    stop = asyncio.Event()
    agent.spawn(runner.run_forever(stop), "genai-sre-probes")
    agent.on_close(stop.set)


def check_files(config: Config) -> list[str]:
    """Validate the files the config points at; return one note per file checked."""
    notes = []
    if config.slo.file:
        from genai_sre.slo.spec import load_slos

        slos = load_slos(config.resolve(config.slo.file))
        notes.append(f"{len(slos.slos)} SLO(s) in {config.slo.file}")
    if config.alerting.file:
        from genai_sre.alerting.config import load_alerting_config

        load_alerting_config(config.resolve(config.alerting.file))
        notes.append(f"alert routes in {config.alerting.file}")
    if config.probes:
        from genai_sre.plugins import resolve

        resolve(PROBE_GROUP, PROBE_RUNNER).check_file(str(config.resolve(config.probes)))  # type: ignore[attr-defined]
        notes.append(f"probes in {config.probes}")
    notes.extend(_failover_notes(config))
    return notes


def _failover_notes(config: Config) -> list[str]:
    """One note per upstream with a fallback: the breaker, and the SLOs whose page fails it over."""
    from genai_sre.healing.controller import scoped_slos

    slos = None
    if config.slo.file and any(u.fallback is not None for u in config.upstreams):
        from genai_sre.slo.spec import load_slos

        slos = load_slos(config.resolve(config.slo.file))
    scoped = scoped_slos(slos, config.upstreams)
    notes = []
    for u in config.upstreams:
        if u.fallback is None:
            continue
        pages = sorted(s for s, up in scoped.items() if up == u.name)
        on_pages = f"SLO pages: {', '.join(pages)}" if pages else "no SLO scoped to it alone pages"
        notes.append(
            f"fail-over {u.name} -> {u.fallback.upstream} (breaker after {u.fallback.trip_after_failures} "
            f"consecutive failures; {on_pages if u.fallback.on_slo_page else 'SLO pages off'})"
        )
    return notes
