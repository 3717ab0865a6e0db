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
from dataclasses import dataclass
from typing import Any

from genai_sre.agent import Agent
from genai_sre.config import Config
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
    _wire_slos(agent, stack.router)
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


def _wire_slos(agent: Agent, router: Any) -> None:
    config = agent.config
    if not config.slo.file:
        return
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
        for alert in engine.evaluate(snapshot=False):
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
    return notes
