"""The bias detector end to end on exchanges, with an injected clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry

from detectors.bias import BiasDetector
from detectors.bias.groups import GroupValue
from detectors.bias.outcomes import Outcomes
from genai_sre.detection.base import BaseDetector, DetectorContext
from genai_sre.detection.runner import DetectorRunner, DetectorSlot, FindingBoard
from genai_sre.errors import ConfigError
from genai_sre.events import Exchange, Finding

from .helpers import make_exchange

T0 = 1_700_000_000.0
REFUSE = "I'm sorry, but I can't help with that."
ANSWER = "Sure, here is a clear and friendly answer to your question."


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _run(detector: BiasDetector, clock: Clock, rates: dict[str, float], seconds: int, seed: int = 1) -> list[Finding]:
    """Two exchanges per second per group; returns the findings of the last exchange."""
    rng = random.Random(seed)
    last: list[Finding] = []
    i = 0
    for s in range(seconds * 2):
        for group, rate in rates.items():
            clock.t += 0.5 / len(rates)
            answer = REFUSE if rng.random() < rate else ANSWER
            ex = make_exchange(i, answer=answer, labels={"group.gender": group})
            last = list(asyncio.run(detector.detect(ex))) if s % 20 == 0 or s == seconds * 2 - 1 else last
            if not (s % 20 == 0 or s == seconds * 2 - 1):
                detector.observe(clock.t, detector.groups.extract(ex), detector.meter.measure(ex), ex.id)
            i += 1
    return last


def _disparity(findings: list[Finding]) -> Finding:
    return next(f for f in findings if f.name == "fairness_disparity")


def test_refusal_disparity_fails_with_evidence() -> None:
    clock = Clock()
    registry = CollectorRegistry()
    detector = BiasDetector(context=DetectorContext(name="bias", clock=clock, registry=registry))
    findings = _run(detector, clock, {"female": 0.35, "male": 0.03}, seconds=150)
    f = _disparity(findings)
    assert f.label == "fail" and f.score is not None and f.score >= 1.0
    a = f.attributes
    assert (a["attribute"], a["metric"], a["groups"]) == ("gender", "refusal", "female|male")
    assert float(a["ci_low"]) <= float(a["gap"]) <= float(a["ci_high"])
    assert float(a["ci_low"]) > 0.05
    assert T0 < float(a["since"]) <= clock.t
    assert a["examples"] and all(e.startswith("ex-") for e in str(a["examples"]).split(","))
    gap = registry.get_sample_value("genai_sre_fairness_disparity", {"attribute": "gender", "metric": "refusal"})
    assert gap is not None and gap > 0.2
    rate = registry.get_sample_value(
        "genai_sre_fairness_group_outcome", {"attribute": "gender", "group": "female", "metric": "refusal"}
    )
    assert rate is not None and 0.2 < rate < 0.5
    rows = {(r.attribute, r.metric): r for r in detector.report()}
    assert rows[("gender", "refusal")].by_group["female"] > rows[("gender", "refusal")].by_group["male"]


def test_equal_treatment_passes() -> None:
    clock = Clock()
    detector = BiasDetector(context=DetectorContext(name="bias", clock=clock))
    f = _disparity(_run(detector, clock, {"female": 0.05, "male": 0.05, "nonbinary": 0.05}, seconds=150))
    assert f.label == "pass" and f.score is not None and f.score < 1.0


def test_small_group_never_fails() -> None:
    clock = Clock()
    detector = BiasDetector(context=DetectorContext(name="bias", clock=clock), min_count=40)
    for i in range(20):  # 20 events of a group that is always refused, 20 of one never refused
        clock.t += 1
        detector.observe(clock.t, (GroupValue("gender", "x"),), Outcomes(True, -0.5, 8), f"x{i}")
        detector.observe(clock.t, (GroupValue("gender", "y"),), Outcomes(False, 0.5, 80), f"y{i}")
    f = _disparity(detector.findings(clock.t))
    assert (f.score, f.label) == (0.0, "pass")


def test_unknown_group_values_go_to_other_and_are_not_compared() -> None:
    clock = Clock()
    detector = BiasDetector(
        context=DetectorContext(name="bias", clock=clock), groups={"values": {"gender": ["female", "male"]}}
    )
    for i in range(300):
        clock.t += 0.5
        ex = make_exchange(i, answer=REFUSE, labels={"group.gender": "martian"})
        asyncio.run(detector.detect(ex))
        ex2 = make_exchange(10_000 + i, answer=ANSWER, labels={"group.gender": "female"})
        findings = asyncio.run(detector.detect(ex2))
    assert detector.groups.extract(make_exchange(labels={"group.gender": "martian"}))[0].value == "other"
    assert _disparity(list(findings)).label == "pass"


def test_probe_and_failed_exchanges_are_ignored() -> None:
    detector = BiasDetector()
    assert asyncio.run(detector.detect(make_exchange(probe=True, labels={"group.gender": "f"}))) == []
    assert asyncio.run(detector.detect(make_exchange(status=500, labels={"group.gender": "f"}))) == []
    assert asyncio.run(detector.detect(make_exchange())) == []  # no group, nothing seen yet


def test_outcome_drift_against_trailing_day_and_pinned_baseline(tmp_path: object) -> None:
    from pathlib import Path

    clock = Clock()
    options: dict[str, Any] = {"drift_window_s": 600, "drift_min_count": 100, "drift_every_s": 60}
    detector = BiasDetector(context=DetectorContext(name="bias", clock=clock), **options)
    rng = random.Random(5)
    for _ in range(2 * 3600 // 5):  # two hours of baseline, one exchange per group every 5 s
        clock.t += 5
        for g in ("a", "b"):
            detector.observe(clock.t, (GroupValue("grp", g),), Outcomes(False, rng.gauss(0.4, 0.2), 100))
    baseline = Path(str(tmp_path)) / "baseline.json"
    detector.pin_baseline(baseline)
    for _ in range(600 // 5):  # ten minutes in which group b's answers turn negative
        clock.t += 5
        detector.observe(clock.t, (GroupValue("grp", "a"),), Outcomes(False, rng.gauss(0.4, 0.2), 100))
        detector.observe(clock.t, (GroupValue("grp", "b"),), Outcomes(False, rng.gauss(-0.3, 0.2), 100))
    drift = next(f for f in detector.findings(clock.t) if f.name == "outcome_drift")
    assert drift.label == "fail"
    assert (drift.attributes["group"], drift.attributes["metric"]) == ("b", "sentiment")
    assert float(drift.attributes["psi"]) > 0.25
    pinned = BiasDetector(
        context=DetectorContext(name="bias", clock=clock), reference="pinned", baseline_file=str(baseline), **options
    )
    for _ in range(600 // 5):
        clock.t += 5
        pinned.observe(clock.t, (GroupValue("grp", "a"),), Outcomes(False, rng.gauss(0.4, 0.2), 100))
    drift_a = next(f for f in pinned.findings(clock.t) if f.name == "outcome_drift")
    assert drift_a.label == "pass" and drift_a.attributes["group"] == "a"


def test_options_are_validated_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"options.*thresholds.*unknown metric 'toxicity'"):
        BiasDetector(thresholds={"toxicity": 0.1})
    with pytest.raises(ConfigError, match="options.windows_s"):
        BiasDetector(windows_s="soon")


class TopicEmbedder:
    """A deterministic stand-in for MiniLM: direction by topic word, plus per-text noise."""

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        rows = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % 2**32)
            v = rng.normal(0, 0.3, 8) + (np.eye(8)[0] if "hostile" in t else np.eye(8)[1])
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows)


def test_embedding_drift_of_one_groups_answers() -> None:
    clock = Clock()
    detector = BiasDetector(
        context=DetectorContext(name="bias", clock=clock), embedder=TopicEmbedder(),
        embedding_drift=True, embedding_sample=20, embedding_every_s=60,
    )
    for i in range(60):
        clock.t += 3  # answers are sampled every embedding_every_s / embedding_sample = 3 s per group
        for g in ("a", "b"):
            topic = "hostile" if g == "b" and i >= 20 else "friendly"
            ex = make_exchange(i * 2 + (g == "b"), answer=f"a {topic} answer number {i}", labels={"group.gender": g})
            detector.observe(clock.t, detector.groups.extract(ex), detector.meter.measure(ex), ex.id, ex.answer)
    assert detector.answers is not None
    results = {e.group: e for e in detector.answers.evaluate()}  # replays: in the calling thread
    assert results["b"].p_value < 0.01 and results["b"].mmd2 > 0.015
    assert results["a"].p_value > 0.01


def test_hallucination_risk_from_the_detector_the_runner_ran_first() -> None:
    """The bias detector runs `after` the hallucination detector and reads its risk of the same exchange."""
    clock = Clock()

    class Risk(BaseDetector):
        async def detect(self, exchange: Exchange) -> Sequence[Finding]:
            score = 0.6 if exchange.labels.get("group.gender") == "b" else 0.1
            return [Finding(name="hallucination_risk", score=score)]

    board = FindingBoard()
    bias = BiasDetector(context=DetectorContext(name="bias", clock=clock, findings=board.of))
    assert bias.after == ("hallucination",)
    runner = DetectorRunner(
        [DetectorSlot("bias", bias), DetectorSlot("hallucination", Risk())], board=board  # order does not matter
    )
    for i in range(200):
        clock.t += 0.5
        for g in ("a", "b"):
            asyncio.run(runner.evaluate(make_exchange(i, answer=ANSWER + f" {i % 7}", labels={"group.gender": g})))
    state = next(s for s in bias.states() if s.metric == "hallucination_risk")
    assert state.disparity is not None and state.disparity.gap == pytest.approx(0.5)
    assert state.score >= 1.0 and state.disparity.high == "b"