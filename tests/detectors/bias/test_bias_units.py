"""Units of evidence: retries and sessions count as clusters, and the gate keeps its false-positive rate."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from detectors.bias import BiasDetector
from detectors.bias.groups import GroupValue
from detectors.bias.outcomes import Outcomes
from detectors.bias.stats import rate_disparity
from detectors.bias.units import UnitTracker, design_effects, prompt_fingerprint, unit_key
from detectors.bias.window import encode
from genai_sre.detection.base import DetectorContext
from genai_sre.events import Exchange, Finding, Message

from .helpers import make_exchange

T0 = 1_700_000_000.0
REFUSED = Outcomes(True, -0.5, 10, 0.2)
ANSWERED = Outcomes(False, 0.4, 120, 1.0)


def _brute_deff(clusters: list[list[bool]]) -> float:
    """The cluster-robust variance of a rate over its binomial variance, computed from the raw clusters."""
    m = np.array([len(c) for c in clusters], dtype=float)
    y = np.array([sum(c) for c in clusters], dtype=float)
    p = y.sum() / m.sum()
    k = len(clusters)
    robust = k / (k - 1) * float(((y - p * m) ** 2).sum()) / m.sum() ** 2
    return robust / (p * (1 - p) / m.sum())


def test_unit_keys_user_first_then_prompt() -> None:
    ask = (Message("system", "Be brief."), Message("user", "What is my balance?"))
    with_user = make_exchange(1, messages=ask, user_key="abc123")
    no_user = make_exchange(2, messages=ask)
    same_prompt = make_exchange(3, messages=ask)
    other_prompt = make_exchange(4, messages=(Message("user", "Something else"),))
    assert unit_key(with_user, ("user", "prompt")) == "u:abc123"
    assert unit_key(no_user, ("user", "prompt")) == unit_key(same_prompt, ("user", "prompt")) != unit_key(
        other_prompt, ("user", "prompt")
    )
    assert unit_key(with_user, ("prompt",)) == unit_key(no_user, ("prompt",))  # a retry from anyone
    assert unit_key(with_user, ()) is None
    assert unit_key(make_exchange(5), ("user", "prompt")) is None  # nothing asked: its own unit
    assert prompt_fingerprint(make_exchange(6, question="hi")) == prompt_fingerprint(make_exchange(7, question="hi"))


def test_cluster_moments_match_a_computation_on_the_raw_clusters() -> None:
    rng = random.Random(3)
    tracker = UnitTracker([600.0], bucket_s=10.0)
    clusters: dict[str, list[bool]] = {}
    t = T0
    for _ in range(3000):
        t += rng.random() * 0.2
        unit = f"u{rng.randrange(200)}"
        # a unit's outcomes are correlated: each unit has its own refusal propensity
        refused = rng.random() < (0.02 + 0.3 * (int(unit[1:]) % 7 == 0))
        clusters.setdefault(unit, []).append(refused)
        tracker.add(t, "group", "a", unit, encode(REFUSED if refused else ANSWERED))
    moments = tracker.span(600.0, t + 1)["group"]["a"]
    assert moments.clusters == len(clusters)  # every cluster's requests lie within the window (~300 s)
    expected = _brute_deff(list(clusters.values()))
    assert expected > 2.0  # strongly clustered
    assert moments.rate_deff() == pytest.approx(expected, rel=1e-9)
    lengths = [[10.0 if r else 120.0 for r in c] for c in clusters.values()]
    mean = sum(map(sum, lengths)) / sum(map(len, lengths))
    var = np.var([v for c in lengths for v in c], ddof=1)
    m = np.array([len(c) for c in lengths], dtype=float)
    s = np.array([sum(c) for c in lengths])
    brute = len(lengths) / (len(lengths) - 1) * float(((s - mean * m) ** 2).sum()) / m.sum() ** 2 / (var / m.sum())
    assert moments.mean_deff("length", float(var)) == pytest.approx(brute, rel=1e-6)


def test_independent_exchanges_have_a_design_effect_near_one() -> None:
    rng = random.Random(5)
    tracker = UnitTracker([600.0], bucket_s=10.0)
    for i in range(4000):
        refused = rng.random() < 0.05
        tracker.add(T0 + i * 0.1, "group", "a", f"u{rng.randrange(1000)}", encode(REFUSED if refused else ANSWERED))
        tracker.add(T0 + i * 0.1, "group", "b", None, encode(REFUSED if refused else ANSWERED))
    span = tracker.span(600.0, T0 + 401)["group"]
    assert 1.0 <= span["a"].rate_deff() < 1.3
    assert 1.0 <= span["b"].rate_deff() < 1.2  # no unit: every exchange is its own cluster


def test_a_group_without_refusals_gets_the_pooled_design_effect() -> None:
    """Zero refusals say nothing about clustering: such a group is not counted as independent."""
    rng = random.Random(8)
    tracker = UnitTracker([600.0], bucket_s=10.0)
    for i in range(2000):
        for group in ("a", "b"):
            unit = f"{group}{rng.randrange(100)}"
            # a and b: refusals cluster by unit; c below: never refused
            refused = rng.random() < (0.4 if int(unit[1:]) % 5 == 0 else 0.01)
            tracker.add(T0 + i * 0.1, "g", group, unit, encode(REFUSED if refused else ANSWERED))
        tracker.add(T0 + i * 0.1, "g", "c", f"c{rng.randrange(100)}", encode(ANSWERED))
    moments = tracker.span(600.0, T0 + 201)["g"]
    own = {g: cm.rate_deff() for g, cm in moments.items()}
    deffs = design_effects(moments, "refusal")
    assert own["c"] == 1.0 and own["a"] > 3 and own["b"] > 3
    assert min(own["a"], own["b"]) <= deffs["c"] <= max(own["a"], own["b"])  # pooled over the groups
    assert deffs["a"] >= own["a"] and deffs["b"] >= own["b"]


def test_a_cluster_is_one_window_long_and_moves_with_its_latest_request() -> None:
    tracker = UnitTracker([60.0], bucket_s=10.0)
    for i in range(12):  # one unit, one request every 10 s for 2 minutes: two clusters of 60 s
        tracker.add(T0 + i * 10.0, "g", "a", "u1", encode(REFUSED if i % 2 else ANSWERED))
    assert tracker.span(60.0, T0 + 115.0)["g"]["a"].clusters == 2  # the first cluster's last request is at T0+60
    assert tracker.span(60.0, T0 + 175.0)["g"]["a"].clusters == 1
    with pytest.raises(ValueError):
        UnitTracker([60.0], 10.0, max_units=0)


def test_retries_do_not_multiply_evidence_in_the_gate() -> None:
    """Equal refusal rates, refused prompts retried 0-2 times and refused again 70% of the time.

    Counted as independent exchanges the gate passes far more often than its level; with the
    design effect it stays close to the level.
    """
    rng = random.Random(11)
    alpha = 0.01
    naive = corrected = 0
    windows = 400
    for _ in range(windows):
        tracker = UnitTracker([120.0], bucket_s=10.0)
        counts: dict[str, list[int]] = {}
        for group in ("a", "b", "c", "d"):
            x = n = 0
            for prompt in range(120):
                outcomes = [rng.random() < 0.08]
                if outcomes[0]:
                    for _ in range(rng.randrange(3)):
                        outcomes.append(rng.random() < 0.7)
                        if not outcomes[-1]:
                            break
                for j, refused in enumerate(outcomes):
                    delta = encode(REFUSED if refused else ANSWERED)
                    tracker.add(T0 + prompt * 0.9 + j, "g", group, f"p{prompt}", delta)
                x, n = x + sum(outcomes), n + len(outcomes)
            counts[group] = [x, n]
        deffs = design_effects(tracker.span(120.0, T0 + 119.0)["g"], "refusal")
        plain = rate_disparity({g: (c[0], c[1]) for g, c in counts.items()}, min_count=40, alpha=alpha)
        fixed = rate_disparity({g: (c[0], c[1]) for g, c in counts.items()}, min_count=40, alpha=alpha,
                               design_effects=deffs)
        assert plain is not None and fixed is not None
        naive += plain.significant
        corrected += fixed.significant
        assert fixed.n_eff_high <= plain.n_high and fixed.p_value >= plain.p_value
    assert naive / windows > 2.5 * alpha  # independent counting: several times the level
    assert corrected / windows <= 1.5 * alpha
    assert corrected < naive


def _exchange(i: int, group: str, refused: bool, user: str | None) -> Exchange:
    answer = "I'm sorry, but I can't help with that." if refused else "Sure, here is a clear answer to that."
    return make_exchange(i, answer=answer, labels={"group.gender": group}, user_key=user,
                         messages=(Message("user", f"question {i}"),))


def test_one_users_refusals_are_one_unit_of_evidence() -> None:
    """One heavy user of group b is refused on every request; everyone else (20 users a group) never.

    Counted per exchange that is a certain gap; counted per unit it is one user's experience.
    """
    now = [T0]

    def run(units: list[str]) -> tuple[Finding, BiasDetector]:
        detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda: now[0]), units=units,
                                windows_s=[600], min_count=20, alpha=1e-3)
        findings: list[Finding] = []
        for i in range(600):
            now[0] = T0 + i
            group = "ab"[i % 2]
            heavy = group == "b" and i % 6 == 1
            user = "heavy" if heavy else f"{group}-{(i // 2) % 20}"
            findings = list(asyncio.run(detector.detect(_exchange(i, group, heavy, user))))
        asyncio.run(detector.aclose())
        return next(f for f in findings if f.name == "fairness_disparity"), detector

    plain, _ = run([])
    assert plain.label == "fail" and plain.attributes["groups"] == "b|a"
    assert float(plain.attributes["p_value"]) < 1e-10  # 100 of 300 refused: "certain"
    clustered, detector = run(["user"])
    assert clustered.label == "pass" and clustered.score == 0.0
    refusal = next(s for s in detector.states() if s.metric == "refusal")
    # 300 exchanges of group b carry the evidence of a handful of units: too few to compare at all
    assert refusal.disparity is None or not refusal.disparity.significant


def test_observe_accepts_a_unit_and_counts_it_in_every_window() -> None:
    detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda: T0), windows_s=[60, 600])
    for i in range(10):
        detector.observe(T0 + i, (GroupValue("g", "a"),), ANSWERED, f"x{i}", unit="u:1")
    assert detector.units.span(60.0, T0 + 11)["g"]["a"].clusters == 1
    assert detector.units.span(600.0, T0 + 11)["g"]["a"].clusters == 1
