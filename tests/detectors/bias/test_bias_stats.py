"""Disparity statistics and the fairlearn frames, checked against hand computations on small tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_difference, demographic_parity_ratio, selection_rate
from scipy.stats import fisher_exact

from detectors.bias.fairness import fairness_table, metric_frame
from detectors.bias.outcomes import Outcomes
from detectors.bias.stats import (
    MeanStat,
    fisher_one_sided,
    mean_disparity,
    newcombe_interval,
    rate_disparity,
    two_proportion_z,
)
from detectors.bias.window import Tally


def _tally(refused: int, n: int, sentiment: float = 0.0) -> Tally:
    t = Tally()
    for i in range(n):
        t.add(Outcomes(refused=i < refused, sentiment=sentiment, length=10))
    return t


def test_metric_frame_on_tallies_matches_hand_computation_and_raw_rows() -> None:
    # group a: 3 of 60 refused (0.05); b: 12 of 60 (0.20); c: 6 of 40 (0.15)
    tallies = {"a": _tally(3, 60), "b": _tally(12, 60), "c": _tally(6, 40)}
    frame = metric_frame(tallies, "refusal")
    assert frame.by_group["a"] == pytest.approx(0.05)
    assert frame.by_group["b"] == pytest.approx(0.20)
    assert frame.by_group["c"] == pytest.approx(0.15)
    assert frame.overall == pytest.approx(21 / 160)
    assert frame.difference() == pytest.approx(0.15)
    assert frame.ratio() == pytest.approx(0.25)
    # the same numbers from raw rows, with fairlearn's own demographic-parity functions
    y_pred = np.concatenate(
        [np.r_[np.ones(3), np.zeros(57)], np.r_[np.ones(12), np.zeros(48)], np.r_[np.ones(6), np.zeros(34)]]
    )
    groups = np.array(["a"] * 60 + ["b"] * 60 + ["c"] * 40)
    y_true = np.zeros(len(y_pred))
    assert demographic_parity_difference(y_true, y_pred, sensitive_features=groups) == pytest.approx(0.15)
    assert demographic_parity_ratio(y_true, y_pred, sensitive_features=groups) == pytest.approx(0.25)
    raw = MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert raw.by_group.to_dict() == pytest.approx(frame.by_group.to_dict())


def test_fast_path_equals_fairlearn() -> None:
    tallies = {"a": _tally(3, 60, 0.1), "b": _tally(12, 60, 0.5), "c": _tally(6, 40, 0.3)}
    d = rate_disparity({g: (t.refused, t.n) for g, t in tallies.items()}, min_count=1)
    assert d is not None
    (row_refusal, row_sentiment) = fairness_table({"gender": tallies}, ("refusal", "sentiment"))
    assert row_refusal.difference == pytest.approx(d.gap)
    assert row_refusal.ratio == pytest.approx(d.ratio)
    m = mean_disparity({g: t.mean_stat("sentiment") for g, t in tallies.items()}, metric="sentiment", min_count=1)
    assert m is not None
    assert row_sentiment.difference == pytest.approx(m.gap) == pytest.approx(0.4)
    assert row_sentiment.by_group == pytest.approx({"a": 0.1, "b": 0.5, "c": 0.3})


def test_two_proportion_z_by_hand() -> None:
    # 12/60 vs 3/60: pooled 0.125, se = sqrt(0.125*0.875*(2/60)) = 0.0604; z = 0.15/0.0604 = 2.484
    z, p = two_proportion_z(12, 60, 3, 60)
    assert z == pytest.approx(0.15 / math.sqrt(0.125 * 0.875 * 2 / 60))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))


def test_fisher_one_sided_matches_scipy() -> None:
    for x1, n1, x2, n2 in ((24, 120, 18, 360), (0, 50, 9, 150), (5, 40, 5, 40), (1, 120, 18, 360)):
        for alternative, greater in (("greater", True), ("less", False)):
            expected = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative=alternative).pvalue
            assert fisher_one_sided(x1, n1, x2, n2, greater) == pytest.approx(expected, rel=1e-9)


def test_newcombe_interval_reference_values() -> None:
    # Newcombe (1998), Table II example (e): 56/70 vs 48/80 -> 0.0524 .. 0.3339
    low, high = newcombe_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=5e-4)
    assert high == pytest.approx(0.3339, abs=5e-4)


def test_rate_disparity_gate_and_bonferroni() -> None:
    counts = {"a": (3, 60), "b": (12, 60), "c": (6, 60), "d": (4, 60)}
    d = rate_disparity(counts, min_count=30, alpha=0.05)
    assert d is not None and (d.high, d.low) == ("b", "a")
    assert d.gap == pytest.approx(0.15)
    rest_x, rest_n = 3 + 6 + 4, 180
    p_high = fisher_one_sided(12, 60, rest_x, rest_n, True)
    p_low = fisher_one_sided(3, 60, 12 + 6 + 4, 180, False)
    assert d.p_value == pytest.approx(min(1.0, min(p_high, p_low) * 8))
    assert d.ci_low < d.gap < d.ci_high
    z = rate_disparity(counts, min_count=30, alpha=0.05, test="z")
    assert z is not None and z.p_value == pytest.approx(min(1.0, two_proportion_z(12, 60, 3, 60)[1] * 6))
    chi = rate_disparity(counts, min_count=30, test="chi2")
    assert chi is not None and 0 < chi.p_value < 1


def test_small_groups_are_never_compared() -> None:
    # a huge gap, but group b has only 10 events: below the minimum count nothing is compared
    assert rate_disparity({"a": (0, 500), "b": (10, 10)}, min_count=30) is None
    d = rate_disparity({"a": (0, 500), "b": (10, 10), "c": (25, 500)}, min_count=30)
    assert d is not None and d.groups == 2 and "b" not in (d.high, d.low)


def test_other_is_excluded_from_comparison() -> None:
    assert rate_disparity({"a": (5, 100), "other": (50, 100)}, min_count=30) is None


def test_mean_disparity_relative_and_welch() -> None:
    # two groups of 100 with means 200 and 100 and variance ~400
    stats = {
        "a": MeanStat(100, 100 * 200.0, 100 * (200.0**2 + 400.0)),
        "b": MeanStat(100, 100 * 100.0, 100 * (100.0**2 + 400.0)),
    }
    d = mean_disparity(stats, metric="length", relative=True, min_count=30)
    assert d is not None
    assert d.gap == pytest.approx(0.5)  # (200 - 100) / 200
    assert d.ratio == pytest.approx(0.5)
    assert d.significant
    same = mean_disparity({"a": stats["a"], "b": stats["a"]}, metric="length", min_count=30)
    assert same is not None and same.gap == 0 and not same.significant


def test_constant_values_with_a_real_gap_are_significant() -> None:
    stats = {"a": MeanStat(50, 50 * 0.6, 50 * 0.36), "b": MeanStat(50, 50 * 0.1, 50 * 0.01)}
    d = mean_disparity(stats, metric="hallucination_risk", min_count=30)
    assert d is not None and d.significant and d.gap == pytest.approx(0.5)
    same = {"a": MeanStat(50, 5.0, 0.5), "b": MeanStat(50, 5.0, 0.5)}
    d2 = mean_disparity(same, metric="hallucination_risk", min_count=30)
    assert d2 is not None and not d2.significant
