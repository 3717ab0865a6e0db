"""The bias detector: per-group outcomes over sliding windows, gated disparity, and drift per group.

For every exchange with a group it records the outcomes (refusal, sentiment,
length, latency, hallucination risk when a source provides it) into time
buckets per (attribute, group). Every `evaluate_every_s` it compares the
groups over each of the sliding `windows_s` (see `stats`: widest gap, minimum count,
significance gate, interval); every `drift_every_s` it compares each group's
outcome distributions over `drift_window_s` with the group's own reference
(the trailing day, or a pinned baseline) by PSI and Jensen-Shannon.

Exchanges are grouped into units of evidence (a user or session, else an
identical prompt; see `units`): the tests and intervals use each group's
effective count, so retries and sessions do not multiply the evidence.

Nothing heavy runs on the event loop: outcomes (VADER sentiment, refusal
patterns) are measured in the detector's worker thread, and with
`embedding_drift` on, a sample of answers per group is embedded with MiniLM
and compared with the group's first answers by MMD in a background job within
`embedding_cpu_share` of a core; the result (finding `embedding_drift`) is
handed to the sinks through `DetectorContext.emit` when it is ready, and
carried by later exchanges' findings.

Each exchange gets findings reflecting the *current* state:
`fairness_disparity` (score = gated gap / threshold of the worst metric, so a
score >= 1 fails; 0 when groups are too small or the gap is not significant)
and, once a reference exists, `outcome_drift` (score = the largest PSI).
The attributes carry the alert evidence: attribute, metric, `groups`
("high|low"), gap with its interval, p-value, `since` (epoch seconds the
failure began) and example exchange ids.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import statistics
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from detectors.bias.answer_drift import AnswerDrift, DriftResult, EmbeddingDrift
from detectors.bias.background import BackgroundJob
from detectors.bias.config import BiasConfig
from detectors.bias.drift import js_distance, psi
from detectors.bias.fairness import FairnessRow, fairness_table
from detectors.bias.gauges import BiasGauges
from detectors.bias.groups import GroupExtractor, GroupValue
from detectors.bias.outcomes import OutcomeMeter, Outcomes, RiskSource
from detectors.bias.stats import Disparity, mean_disparity, rate_disparity
from detectors.bias.units import ClusterMoments, UnitTracker, design_effects, unit_key
from detectors.bias.window import CONTINUOUS, BucketedTallies, Grouped, Tally, encode
from detectors.common.embedding import Embedder, load_embedder
from detectors.common.refusal import DEFAULT_PATTERNS, RefusalClassifier
from genai_sre.detection.base import BaseDetector, DetectorContext
from genai_sre.errors import ConfigError
from genai_sre.events import Evaluation, Exchange, Finding
from genai_sre.schema import build

__all__ = ["BiasDetector", "MetricState"]

logger = logging.getLogger(__name__)

_DAY_S = 86400.0
_RELATIVE = ("length", "latency")


@dataclass(frozen=True, slots=True)
class MetricState:
    attribute: str
    metric: str
    disparity: Disparity | None
    score: float
    since: float | None
    window_s: float = 0.0


class GroupLabels(Protocol):
    """What `idle_reason` reads of the sidecar's `labels:` settings."""

    @property
    def group_headers(self) -> Mapping[str, str]: ...

    @property
    def group_metadata(self) -> tuple[str, ...]: ...


class BiasDetector(BaseDetector):
    """Fairness monitoring across user groups. Options: `BiasConfig` keys."""

    finding_names = ("fairness_disparity", "outcome_drift", "embedding_drift")

    @staticmethod
    def idle_reason(labels: GroupLabels, options: Mapping[str, Any]) -> str | None:
        """Why this detector would report nothing with these settings (None when it can report)."""
        groups = options.get("groups")
        inferred = isinstance(groups, Mapping) and bool(groups.get("infer"))
        if labels.group_headers or labels.group_metadata or inferred:
            return None
        return (
            "no user-group attribute is configured (labels.group_headers, labels.group_metadata or the "
            "detector's groups.infer); the SLOs it feeds count no events until one is"
        )

    def __init__(
        self,
        context: DetectorContext | None = None,
        risk_source: RiskSource | None = None,
        embedder: Embedder | None = None,
        **options: Any,
    ) -> None:
        self.config: BiasConfig = build(BiasConfig, dict(options), path=("options",))
        self.context = context or DetectorContext(name="bias")
        self.clock = self.context.clock
        cfg = self.config
        self.groups = GroupExtractor(cfg.groups)
        refusal = RefusalClassifier(patterns=DEFAULT_PATTERNS, extra_patterns=cfg.refusal_patterns)
        self.after: tuple[str, ...] = ()
        if risk_source is None and cfg.risk_detector and self.context.findings is not None:
            # the hallucination risk of the same exchange, from the detector the runner ran first
            self.after = (cfg.risk_detector,)
            risk_source = functools.partial(_risk_of, self.context.findings, cfg.risk_detector)
        self.meter = OutcomeMeter(refusal, risk_source)
        self._fine = BucketedTallies(cfg.bucket_s, max(cfg.windows_s) + cfg.bucket_s)
        self.units = UnitTracker(cfg.windows_s, cfg.bucket_s, cfg.max_units)
        self._medium = BucketedTallies(300.0, cfg.drift_window_s + 300.0)
        self._coarse = BucketedTallies(3600.0, _DAY_S + cfg.drift_window_s + 7200.0)
        self._pinned: Grouped | None = self._load_baseline() if cfg.reference == "pinned" else None
        self._examples: dict[tuple[str, str, bool], deque[str]] = {}
        self._states: dict[tuple[str, str], MetricState] = {}
        self._per_window: dict[float, dict[tuple[str, str], MetricState]] = {}
        self._window_due: dict[float, float] = {}
        self._drift: dict[tuple[str, str, str], tuple[float, float, float]] = {}
        self._next_eval = float("-inf")
        self._next_drift = float("-inf")
        self._seen_any = False
        self._cached: list[Finding] | None = None
        self.gauges = BiasGauges.for_context(self.context)
        self.answers: AnswerDrift | None = None
        if cfg.embedding_drift:
            self.answers = AnswerDrift(embedder or load_embedder(), cfg.embedding_sample, every_s=cfg.embedding_every_s)
        self._embedding: list[EmbeddingDrift] = []
        self._next_embedding = self.clock() + cfg.embedding_every_s
        self.background: BackgroundJob[DriftResult] = BackgroundJob(f"{self.context.name}-embeddings",
                                                                    cfg.embedding_cpu_share)
        self._measure_pool: ThreadPoolExecutor | None = None

    # --- the Detector protocol --------------------------------------------------------------------

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        if exchange.probe or not exchange.ok:
            return []
        groups = self.groups.extract(exchange)
        if groups:
            outcomes = await self._measure(exchange)
            unit = unit_key(exchange, self.config.units)
            self.observe(self.clock(), groups, outcomes, exchange.id, exchange.answer, unit)
        if not self._seen_any:
            return []
        now = self.clock()
        if self.answers is not None:
            self._start_embedding_job(now, exchange)
        return self.findings(now)

    async def _measure(self, exchange: Exchange) -> Outcomes:
        """The exchange's outcomes: the text measured in the detector's worker thread (VADER is pure
        Python), the risk source read here, on the loop, where whatever it reads is owned."""
        if self._measure_pool is None:
            self._measure_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"genai-sre-{self.context.name}")
        risk = self.meter.risk(exchange)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._measure_pool, self.meter.measure_answer, exchange, risk)

    def _start_embedding_job(self, now: float, exchange: Exchange) -> None:
        """Start the next embedding job in the background when the budget allows; it reports when done."""
        answers = self.answers
        if answers is None or not self.background.ready():
            return
        due = now >= self._next_embedding
        job = answers.snapshot(test=due)
        if job is None:
            return
        if job.samples:
            self._next_embedding = now + self.config.embedding_every_s
        self.background.submit(lambda: answers.run(job), lambda result: self._embedded(result, exchange))

    def _embedded(self, result: DriftResult, exchange: Exchange) -> None:
        assert self.answers is not None
        drift = self.answers.merge(result)
        if not result.tested:
            return
        self._embedding = drift
        self._cached = None
        finding = self._embedding_finding()
        emit = self.context.emit
        if finding is not None and emit is not None:
            stamped = dataclasses.replace(finding, detector=self.context.name, exchange_id=exchange.id)
            emit(Evaluation(exchange, (stamped,), {self.context.name: "scored"}, supplement=True))

    async def aclose(self) -> None:
        await self.background.aclose()
        if self._measure_pool is not None:
            await asyncio.to_thread(self._measure_pool.shutdown, True)
            self._measure_pool = None

    # --- the synchronous core (used by detect() and by replays) -----------------------------------

    def observe(
        self,
        at: float,
        groups: Sequence[GroupValue],
        outcomes: Outcomes,
        exchange_id: str = "",
        answer: str = "",
        unit: str | None = None,
    ) -> None:
        """Count one exchange's outcomes for its groups; `unit` names its unit of evidence (None: its own)."""
        self._seen_any = True
        delta = encode(outcomes)
        for g in groups:
            self._fine.add(at, g.attribute, g.value, delta)
            self.units.add(at, g.attribute, g.value, unit, delta)
            self._medium.add(at, g.attribute, g.value, delta)
            self._coarse.add(at, g.attribute, g.value, delta)
            if exchange_id and self.config.examples:
                key = (g.attribute, g.value, outcomes.refused)
                ring = self._examples.get(key)
                if ring is None:
                    ring = self._examples[key] = deque(maxlen=self.config.examples)
                ring.append(exchange_id)
            if self.answers is not None and answer:
                self.answers.add(g.attribute, g.value, answer, at)

    def findings(self, now: float) -> list[Finding]:
        """The findings for an exchange observed at `now` (re-evaluated when due, cached in between)."""
        if now >= self._next_eval:
            self.evaluate(now)
            self._cached = None
        if now >= self._next_drift:
            self.evaluate_drift(now)
            self._cached = None
        if self._cached is None:
            extra = [f for f in (self._drift_finding(), self._embedding_finding()) if f is not None]
            self._cached = [self._disparity_finding(), *extra]
        return list(self._cached)

    def evaluate(self, now: float) -> list[MetricState]:
        """Recompute the gated disparity of every (attribute, metric); the worst window wins.

        Each window is recomputed at most every `max(evaluate_every_s, window / 30)` seconds.
        """
        cfg = self.config
        self._next_eval = now + cfg.evaluate_every_s
        for window_s in cfg.windows_s:
            if now >= self._window_due.get(window_s, float("-inf")):
                self._window_due[window_s] = now + max(cfg.evaluate_every_s, window_s / 30.0)
                self._per_window[window_s] = self._evaluate_window(now, window_s)
        states: dict[tuple[str, str], MetricState] = {}
        for window_s in sorted(cfg.windows_s):
            for key, state in self._per_window.get(window_s, {}).items():
                best = states.get(key)
                if best is None or state.score > best.score or (best.disparity is None and state.disparity):
                    states[key] = state
        for key, state in states.items():
            previous = self._states.get(key)
            since = None
            if state.score >= 1.0:
                since = previous.since if previous is not None and previous.since is not None else now
            states[key] = replace(state, since=since)
            if self.gauges is not None:
                self.gauges.disparity(state.attribute, state.metric, state.disparity)
        self._states = states
        if self.gauges is not None:
            longest = max(cfg.windows_s)
            for attribute, tallies in self._fine.span(now - longest, now).items():
                self.gauges.group_outcomes(attribute, tuple(cfg.thresholds), tallies)
        return list(states.values())

    def _evaluate_window(self, now: float, window_s: float) -> dict[tuple[str, str], MetricState]:
        out: dict[tuple[str, str], MetricState] = {}
        clusters = self.units.span(window_s, now)
        for attribute, tallies in self._fine.span(now - window_s, now).items():
            moments = clusters.get(attribute, {})
            for metric, threshold in self.config.thresholds.items():
                d = self._compare(tallies, metric, moments)
                score = d.gap / threshold if d is not None and d.significant else 0.0
                out[(attribute, metric)] = MetricState(attribute, metric, d, score, None, window_s)
        return out

    def evaluate_drift(self, now: float) -> None:
        cfg = self.config
        self._next_drift = now + cfg.drift_every_s
        current = self._medium.span(now - cfg.drift_window_s, now)
        reference = self._reference(now)
        drift: dict[tuple[str, str, str], tuple[float, float, float]] = {}
        for attribute, tallies in current.items():
            ref_groups = reference.get(attribute, {})
            for metric in ("refusal", *CONTINUOUS):
                scores: dict[str, tuple[float, float]] = {}
                for group, tally in tallies.items():
                    ref = ref_groups.get(group)
                    if ref is None:
                        continue
                    cur_h, ref_h = tally.hist(metric), ref.hist(metric)
                    if sum(cur_h) < cfg.drift_min_count or sum(ref_h) < cfg.drift_min_count:
                        continue
                    scores[group] = (psi(ref_h, cur_h), js_distance(ref_h, cur_h))
                if not scores:
                    continue
                typical = statistics.median(v[0] for v in scores.values())
                for group, (p, j) in scores.items():
                    drift[(attribute, group, metric)] = (p, j, p - typical)
                    if self.gauges is not None:
                        self.gauges.drift(attribute, group, metric, p)
        self._drift = drift

    # --- reports and references -------------------------------------------------------------------

    def states(self) -> list[MetricState]:
        return list(self._states.values())

    def report(self, now: float | None = None) -> list[FairnessRow]:
        """fairlearn MetricFrame results per (attribute, metric) over the longest window."""
        at = self.clock() if now is None else now
        window = self._fine.span(at - max(self.config.windows_s), at)
        return fairness_table(window, tuple(self.config.thresholds), self.config.min_count)

    def pin_baseline(self, path: str | Path, now: float | None = None) -> None:
        """Save the trailing day's tallies as the pinned baseline and start using it."""
        at = self.clock() if now is None else now
        baseline = self._coarse.span(at - _DAY_S, at)
        data = {a: {g: t.to_json() for g, t in groups.items()} for a, groups in baseline.items()}
        Path(path).write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        self._pinned = baseline

    def _load_baseline(self) -> Grouped:
        path = self.config.baseline_file
        assert path is not None
        p = Path(path)
        if not p.exists():
            logger.warning("bias baseline %s does not exist yet; drift waits for pin_baseline()", p)
            return {}
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
            return {a: {g: Tally.from_json(t) for g, t in groups.items()} for a, groups in raw.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"bias baseline {str(p)!r} cannot be read: {exc}") from exc

    def _reference(self, now: float) -> Grouped:
        if self._pinned is not None:
            return self._pinned
        end = now - self.config.drift_window_s
        return self._coarse.span(end - _DAY_S, end - 3600.0)

    # --- internals --------------------------------------------------------------------------------

    def _compare(
        self, tallies: Mapping[str, Tally], metric: str, moments: Mapping[str, ClusterMoments] | None = None
    ) -> Disparity | None:
        cfg = self.config
        if metric == "refusal":
            counts = {g: (t.refused, t.n) for g, t in tallies.items()}
            rate_deffs = design_effects(moments or {}, metric)
            return rate_disparity(
                counts, metric=metric, test=cfg.test, min_count=cfg.min_count, alpha=cfg.alpha,
                confidence=cfg.confidence, exclude=cfg.exclude_groups, design_effects=rate_deffs,
            )
        stats = {g: t.mean_stat(metric) for g, t in tallies.items()}
        deffs = design_effects(moments or {}, metric, {g: s.variance for g, s in stats.items()})
        return mean_disparity(
            stats, metric=metric, relative=metric in _RELATIVE, min_count=cfg.min_count, alpha=cfg.alpha,
            confidence=cfg.confidence, exclude=cfg.exclude_groups, design_effects=deffs,
        )

    def _disparity_finding(self) -> Finding:
        worst = max(self._states.values(), key=lambda s: (s.score, s.disparity is not None), default=None)
        if worst is None or worst.disparity is None:
            return Finding(name="fairness_disparity", score=0.0, label="pass",
                           explanation="not enough events per group to compare")
        d = worst.disparity
        failing = worst.score >= 1.0
        bad_outcome = worst.metric == "refusal"
        examples = ",".join(self._examples.get((worst.attribute, d.high, bad_outcome), ()))
        threshold = self.config.thresholds[worst.metric]
        explanation = (
            f"{worst.metric} gap {d.gap:.3f} between {worst.attribute}={d.high} and {d.low} "
            f"(95% CI {d.ci_low:.3f}..{d.ci_high:.3f}, p={d.p_value:.2g}, threshold {threshold})"
        )
        return Finding(
            name="fairness_disparity",
            score=round(worst.score, 6),
            label="fail" if failing else "pass",
            explanation=explanation,
            attributes={
                "attribute": worst.attribute, "metric": worst.metric, "groups": f"{d.high}|{d.low}",
                "gap": round(d.gap, 6), "ci_low": round(d.ci_low, 6), "ci_high": round(d.ci_high, 6),
                "p_value": float(f"{d.p_value:.3g}"), "threshold": threshold, "n": f"{d.n_high}|{d.n_low}",
                "n_eff": f"{d.n_eff_high:.0f}|{d.n_eff_low:.0f}",
                "since": worst.since if worst.since is not None else 0.0, "examples": examples,
                "window_s": worst.window_s,
            },
        )

    def _embedding_finding(self) -> Finding | None:
        if not self._embedding:
            return None
        worst = max(self._embedding, key=lambda e: e.mmd2)
        failing = worst.p_value < 0.01 and worst.mmd2 >= self.config.mmd_threshold
        return Finding(
            name="embedding_drift",
            score=round(worst.mmd2, 6),
            label="fail" if failing else "pass",
            explanation=f"answers of {worst.attribute}={worst.group} moved from their reference: "
            f"MMD^2 {worst.mmd2:.4f}, p={worst.p_value:.2g}",
            attributes={"attribute": worst.attribute, "group": worst.group, "mmd2": round(worst.mmd2, 6),
                        "p_value": worst.p_value, "n": worst.n},
        )

    def _drift_finding(self) -> Finding | None:
        if not self._drift:
            return None
        (attribute, group, metric), (p, j, excess) = max(self._drift.items(), key=lambda kv: kv[1][0])
        return Finding(
            name="outcome_drift",
            score=round(p, 6),
            label="fail" if p >= self.config.psi_threshold else "pass",
            explanation=f"{metric} of {attribute}={group} moved from its reference: PSI {p:.3f}, JS {j:.3f}",
            attributes={"attribute": attribute, "group": group, "metric": metric, "psi": round(p, 6),
                        "js": round(j, 6), "excess_psi": round(excess, 6)},
        )


def _risk_of(findings: Callable[[str], Sequence[Finding]], detector: str, exchange: Exchange) -> float | None:
    for f in findings(exchange.id):
        if f.detector == detector and f.name == "hallucination_risk" and f.score is not None:
            return float(f.score)
    return None
