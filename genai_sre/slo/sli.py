"""Turning proxy results and evaluations into SLI events.

`SLIRecorder` is the one place that decides what counts as good or bad. Every
event goes to `emit(slo, good)` (the app passes a function that increments
`genai_sre_slo_events_total{slo, outcome}`, so Prometheus sees exactly what the
engine sees) and, when an engine runs in process, to `engine.record()`.

- `on_request()` counts availability SLI events from the proxy's outcome
  counters (`genai_sre.proxy.intake`), every request exactly once.
- `on_evaluation()` runs in the pipeline for latency, quality and time-slice
  SLIs. Probe traffic is never counted unless an SLI sets `include_probes`.
- `flush(now)` closes finished time slices even when no new evaluation
  arrives; call it from the evaluation loop.
- `on_probe(slo, good)`, when set, hears how each probe request or exchange
  that an SLO's filters match would have been judged, whether or not the SLO
  counts probes: fail-back after an SLO fail-over waits on it
  (`genai_sre.healing`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from genai_sre.events import Evaluation, Exchange
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import Filters, SLOFile, SLOSpec

__all__ = ["SLIRecorder"]

Emit = Callable[[str, bool], None]
ProbeSink = Callable[[str, bool], None]


@dataclass(frozen=True, slots=True)
class _Match:
    routes: frozenset[str] | None
    upstreams: frozenset[str] | None
    tenants: frozenset[str] | None
    models: frozenset[str] | None

    @classmethod
    def of(cls, f: Filters) -> _Match:
        def opt(values: tuple[str, ...]) -> frozenset[str] | None:
            return frozenset(values) if values else None

        return cls(opt(f.routes), opt(f.upstreams), opt(f.tenants), opt(f.models))

    def request(self, route: str, upstream: str, tenant: str | None) -> bool:
        return (
            (self.routes is None or route in self.routes)
            and (self.upstreams is None or upstream in self.upstreams)
            and (self.tenants is None or tenant in self.tenants)
        )

    def exchange(self, ex: Exchange) -> bool:
        return self.request(ex.route, ex.upstream, ex.labels.get("tenant")) and (
            self.models is None or ex.model in self.models
        )


class _Slice:
    """The running statistic of the current time slice of one time-slice SLO."""

    __slots__ = ("index", "max", "sum", "n", "worst")

    def __init__(self, index: int) -> None:
        self.index = index
        self.max = -math.inf
        self.sum = 0.0
        self.n = 0
        self.worst: Mapping[str, object] = {}

    def add(self, value: float, evidence: Mapping[str, object] | None = None) -> None:
        if value > self.max and evidence is not None:
            self.worst = evidence
        self.max = max(self.max, value)
        self.sum += value
        self.n += 1

    def value(self, statistic: str) -> float:
        return self.max if statistic == "max" else self.sum / self.n


class SLIRecorder:
    def __init__(
        self, slos: SLOFile, emit: Emit, engine: SLOEngine | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._emit = emit
        self._engine = engine
        self._clock = clock
        self._availability = tuple(
            (s.name, _Match.of(s.filters), s.sli.include_probes) for s in slos.slos if s.sli.kind == "availability"
        )
        self._evaluated = tuple((s, _Match.of(s.filters)) for s in slos.slos if s.sli.kind in ("latency", "quality"))
        self._sliced = tuple((s, _Match.of(s.filters)) for s in slos.slos if s.sli.kind == "time_slice")
        self._slices: dict[str, _Slice] = {}
        self._evidence: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.on_probe: ProbeSink | None = None

    def _event(self, slo: str, good: bool, at: float | None = None) -> None:
        self._emit(slo, good)
        if self._engine is not None:
            self._engine.record(slo, good, at)

    def on_request(self, route: str, upstream: str, tenant: str | None, ok: bool, probe: bool, n: int = 1) -> None:
        """`n` proxied requests finished (or failed); `ok` is False for 5xx, timeout, connect error, cut stream."""
        for name, match, probes in self._availability:
            if (probes or not probe) and match.request(route, upstream, tenant):
                for _ in range(n):
                    self._event(name, ok)
            if probe and self.on_probe is not None and match.request(route, upstream, tenant):
                for _ in range(n):
                    self.on_probe(name, ok)

    def on_evaluation(self, evaluation: Evaluation) -> None:
        ex = evaluation.exchange
        if evaluation.supplement:
            return  # SLIs count each exchange once, from its own evaluation
        if ex.probe and self.on_probe is not None:
            self._judge_probe(evaluation, self.on_probe)
        for spec, match in self._evaluated:
            if (ex.probe and not spec.sli.include_probes) or not match.exchange(ex):
                continue
            good = self._judge(spec, evaluation)
            if good is not None:
                self._event(spec.name, good)
        for spec, match in self._sliced:
            if (ex.probe and not spec.sli.include_probes) or not match.exchange(ex):
                continue
            value = self._value(spec, evaluation)
            if value is not None:
                finding = evaluation.finding(spec.sli.detector or "", spec.sli.finding)
                evidence = dict(finding.attributes) if finding is not None else {}
                if finding is not None and finding.explanation:
                    evidence["explanation"] = finding.explanation
                evidence["exchange_id"] = ex.id
                self._add_to_slice(spec, ex.started_at, value, evidence)

    def _judge_probe(self, evaluation: Evaluation, sink: ProbeSink) -> None:
        """A probe exchange, judged per SLO it matches; a time-slice SLO judges the exchange's own value."""
        ex = evaluation.exchange
        for spec, match in self._evaluated:
            if match.exchange(ex) and (good := self._judge(spec, evaluation)) is not None:
                sink(spec.name, good)
        for spec, match in self._sliced:
            if match.exchange(ex) and (value := self._value(spec, evaluation)) is not None:
                sink(spec.name, value < (spec.sli.threshold if spec.sli.threshold is not None else math.inf))

    @staticmethod
    def _judge(spec: SLOSpec, evaluation: Evaluation) -> bool | None:
        sli = spec.sli
        if sli.kind == "latency":
            ex = evaluation.exchange
            seconds = ex.ttft_s if sli.metric == "ttft" else ex.duration_s
            if seconds is None or sli.threshold_s is None:
                return None  # no timing (failed request): availability counts it, latency leaves it out
            return seconds <= sli.threshold_s
        value = SLIRecorder._value(spec, evaluation)
        if value is None or sli.threshold is None:
            return None
        return value < sli.threshold

    @staticmethod
    def _value(spec: SLOSpec, evaluation: Evaluation) -> float | None:
        sli = spec.sli
        if sli.detector is None or not evaluation.scored_by(sli.detector):
            return None  # not scored (failed, timed out, sampled out): left out, never counted as good
        finding = evaluation.finding(sli.detector, sli.finding)
        if finding is None:
            return None
        raw = finding.score if sli.attribute is None else finding.attributes.get(sli.attribute)
        if not isinstance(raw, (int, float)) or math.isnan(raw):  # bool counts as 0/1
            return None
        return float(raw)

    def evidence(self, slo: str) -> dict[str, str]:
        """Attributes of the worst finding of the latest bad slice of a time-slice SLO (for its alert)."""
        with self._lock:
            return dict(self._evidence.get(slo, {}))

    def _add_to_slice(
        self, spec: SLOSpec, t: float, value: float, evidence: Mapping[str, object] | None = None
    ) -> None:
        width = spec.sli.slice_s
        index = int(t // width)
        closed: tuple[float, bool] | None = None
        with self._lock:
            current = self._slices.get(spec.name)
            if current is None or index > current.index:
                if current is not None:
                    closed = self._close(spec, current)
                current = self._slices[spec.name] = _Slice(index)
            current.add(value, evidence)  # a late evaluation counts in the open slice
        if closed is not None:
            self._event(spec.name, closed[1], closed[0])

    def _close(self, spec: SLOSpec, s: _Slice) -> tuple[float, bool]:
        """End time and verdict of a slice; a bad slice's worst finding becomes the SLO's alert evidence."""
        threshold = spec.sli.threshold if spec.sli.threshold is not None else math.inf
        end = (s.index + 1) * spec.sli.slice_s
        good = s.value(spec.sli.statistic) < threshold
        if not good and s.worst:
            self._evidence[spec.name] = {k: _text(v) for k, v in s.worst.items()}
        return end, good

    def flush(self, now: float | None = None) -> None:
        """Emit the events of time slices that ended before `now`."""
        now = self._clock() if now is None else now
        done: list[tuple[str, float, bool]] = []
        with self._lock:
            for spec, _ in self._sliced:
                current = self._slices.get(spec.name)
                if current is not None and now >= (current.index + 1) * spec.sli.slice_s:
                    end, good = self._close(spec, current)
                    del self._slices[spec.name]
                    done.append((spec.name, end, good))
        for name, end, good in done:
            self._event(name, good, end)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e6 else f"{value:.4g}"  # epoch times stay whole
    return str(value)[:500]
