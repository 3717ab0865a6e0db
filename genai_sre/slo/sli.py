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
- `bad_slos(evaluation)` names the SLOs that count one exchange as a bad event
  (the evidence store tags samples with it), and `evidence(slo)` summarises the
  bad events behind an alert: HTTP statuses for availability, the worst value
  and its explanation for latency and quality, the worst finding of the latest
  bad slice for time slices.
- `on_probe(slo, good)`, when set, hears how each probe request or exchange
  that an SLO's filters match would have been judged, whether or not the SLO
  counts probes: fail-back after an SLO fail-over waits on it
  (`genai_sre.healing`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from genai_sre.events import Evaluation, Exchange, status_text
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import Filters, SLOFile, SLOSpec

__all__ = ["SLIRecorder"]

Emit = Callable[[str, bool], None]
ProbeSink = Callable[[str, bool], None]

BAD_EVENTS_KEPT = 2000  # per SLO, for alert evidence


@dataclass(frozen=True, slots=True)
class _Bad:
    """One bad event of an exchange-based SLO, as its alert evidence quotes it."""

    at: float
    exchange_id: str
    status: str  # `status=503`, `status=error (cut)`
    value: float | None = None
    explanation: str = ""


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
        self._bad: dict[str, deque[_Bad]] = {s.name: deque(maxlen=BAD_EVENTS_KEPT) for s in slos.slos}
        self._kinds = {s.name: s.sli for s in slos.slos}
        self._short = {s.name: slos.recording_windows_s(s)[0] for s in slos.slos}  # the alerts' burn_rate window
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
        if not ex.ok:  # counted by on_request(); remembered here for the alert's evidence
            for name, match, probes in self._availability:
                if (probes or not ex.probe) and _asked(match, ex):
                    self._remember(name, _Bad(ex.started_at, ex.id, status_text(ex.status, ex.error)))
        if ex.probe and self.on_probe is not None:
            self._judge_probe(evaluation, self.on_probe)
        for spec, match in self._evaluated:
            if (ex.probe and not spec.sli.include_probes) or not match.exchange(ex):
                continue
            good = self._judge(spec, evaluation)
            if good is not None:
                self._event(spec.name, good)
                if not good:
                    self._remember(spec.name, self._bad_of(spec, evaluation))
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

    def bad_slos(self, evaluation: Evaluation) -> tuple[str, ...]:
        """The SLOs that count this exchange as a bad event, or whose time slice it made bad."""
        ex = evaluation.exchange
        if evaluation.supplement:
            return ()
        out = []
        if not ex.ok:
            out += [n for n, match, probes in self._availability if (probes or not ex.probe) and _asked(match, ex)]
        for spec, match in self._evaluated:
            if (ex.probe and not spec.sli.include_probes) or not match.exchange(ex):
                continue
            if self._judge(spec, evaluation) is False:
                out.append(spec.name)
        for spec, match in self._sliced:
            if (ex.probe and not spec.sli.include_probes) or not match.exchange(ex):
                continue
            value = self._value(spec, evaluation)
            threshold = spec.sli.threshold if spec.sli.threshold is not None else math.inf
            if value is not None and value >= threshold:
                out.append(spec.name)
        return tuple(out)

    def _bad_of(self, spec: SLOSpec, evaluation: Evaluation) -> _Bad:
        ex = evaluation.exchange
        if spec.sli.kind == "latency":
            value = ex.ttft_s if spec.sli.metric == "ttft" else ex.duration_s
            return _Bad(ex.started_at, ex.id, status_text(ex.status, ex.error), value)
        finding = evaluation.finding(spec.sli.detector or "", spec.sli.finding)
        value = self._value(spec, evaluation)
        if finding is not None and finding.score is not None:
            value = finding.score  # the score people read (an attribute such as slo_flagged is 0/1)
        explanation = finding.explanation if finding is not None else ""
        return _Bad(ex.started_at, ex.id, status_text(ex.status, ex.error), value, explanation)

    def _remember(self, slo: str, bad: _Bad) -> None:
        with self._lock:
            self._bad[slo].append(bad)
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
        """What an alert of `slo` quotes (as `evidence_<key>` annotations): for a time-slice SLO the attributes
        of the worst finding of its latest bad slice; for the others, the bad events of the alert's shortest
        window (`bad_events`, `statuses`, `exchange_id`; latency and quality add `worst` and, from the worst
        finding, `explanation`)."""
        with self._lock:
            if slo in self._evidence:
                return dict(self._evidence[slo])
            kept = self._bad.get(slo)
            if not kept:
                return {}
            since = self._clock() - self._short[slo]
            recent = [b for b in kept if b.at >= since] or [kept[-1]]
        sli = self._kinds[slo]
        statuses = Counter(b.status for b in recent)
        out = {
            "bad_events": str(len(recent)),
            "statuses": ", ".join(f"{k} x{n}" for k, n in statuses.most_common(4)),
            "exchange_id": recent[-1].exchange_id,
        }
        valued = [b for b in recent if b.value is not None]
        if sli.kind in ("latency", "quality") and valued:
            worst = max(valued, key=lambda b: b.value or 0.0)
            value = f"{worst.value:.2f} s" if sli.kind == "latency" else f"{worst.value:.2f}"
            out["worst"] = f"{value} ({worst.exchange_id})"
            if worst.explanation:
                out["explanation"] = worst.explanation
        return out

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


def _asked(match: _Match, ex: Exchange) -> bool:
    """The availability filter as `on_request` applies it (route, upstream, tenant; not the model)."""
    return match.request(ex.route, ex.upstream, ex.labels.get("tenant"))


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e6 else f"{value:.4g}"  # epoch times stay whole
    return str(value)[:500]
