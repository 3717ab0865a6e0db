"""Disparity between groups with a significance gate, computed from per-group counts.

Rates (refusal): the gap is max - min selection rate among groups with at
least `min_count` events (fairlearn's `difference(method="between_groups")`),
the ratio min / max (`ratio()`), the gate Fisher's exact test of each extreme
group against the rest (or a z-test, or a chi-square test on the group x
outcome table) with Bonferroni correction, and the interval on the gap
Newcombe's hybrid score interval (Wilson based, fine at small counts).

Means (sentiment, length, latency, risk): gap of group means, Welch's test of
each extreme group against the rest (normal approximation; groups have at
least `min_count` events), interval from the Welch standard error. `relative=True` divides gap and interval by the
larger mean (answer length and latency differ in scale between deployments).

Clustered exchanges (retries, sessions, repeated prompts; see `units`): each
function takes an optional design effect per group. Gaps and rates stay those
of the exchanges; eligibility, tests and intervals use the effective counts
n / deff (a rate's positives and events both divided, a mean's variance
multiplied), so a group's evidence is what its independent units carry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from scipy.stats import chi2_contingency

__all__ = [
    "Disparity",
    "MeanStat",
    "fisher_one_sided",
    "mean_disparity",
    "newcombe_interval",
    "rate_disparity",
    "two_proportion_z",
]

_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class MeanStat:
    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class Disparity:
    """The widest gap between two eligible groups, and whether it is beyond chance."""

    metric: str
    high: str
    low: str
    gap: float
    ratio: float | None
    p_value: float
    ci_low: float
    ci_high: float
    n_high: int
    n_low: int
    groups: int
    significant: bool
    deff_high: float = 1.0
    deff_low: float = 1.0

    @property
    def n_eff_high(self) -> float:
        return self.n_high / self.deff_high

    @property
    def n_eff_low(self) -> float:
        return self.n_low / self.deff_low


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic and its two-sided p-value."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need at least one event")
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, _p_two_sided(z)


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    p = x / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(
    x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe (1998) method 10 interval for p1 - p2 (effective, non-integer counts allowed)."""
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1, z)
    l2, u2 = _wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def _eligible(sizes: Mapping[str, float], min_count: int, exclude: tuple[str, ...]) -> list[str]:
    return sorted(g for g, n in sizes.items() if n >= min_count - 1e-9 and g not in exclude)


def _deffs(groups: Iterable[str], design_effects: Mapping[str, float] | None) -> dict[str, float]:
    given = design_effects or {}
    return {g: max(1.0, float(given.get(g, 1.0))) for g in groups}


_LOG_FACTORIAL: list[float] = [0.0]


def _log_factorials(n: int) -> list[float]:
    table = _LOG_FACTORIAL
    while len(table) <= n:
        table.append(table[-1] + math.log(len(table)))
    return table


def _log_choose(n: int, k: int) -> float:
    lf = _log_factorials(n)
    return lf[n] - lf[k] - lf[n - k]


def fisher_one_sided(x1: int, n1: int, x2: int, n2: int, greater: bool = True) -> float:
    """Fisher's exact one-sided p-value that group 1's rate is greater (or less) than group 2's.

    The hypergeometric tail computed with log-gamma: ~20 us instead of scipy's ~800 us, and exact
    where the pooled z-test is anti-conservative (a few events per group, zero cells).
    """
    total, xs = n1 + n2, x1 + x2
    lo, hi = max(0, xs - n2), min(xs, n1)
    lf = _log_factorials(total)
    base = lf[n1] + lf[n2] + lf[xs] + lf[total - xs] - lf[total]
    ks = range(x1, hi + 1) if greater else range(lo, x1 + 1)
    p = 0.0
    for k in ks:
        p += math.exp(base - lf[k] - lf[n1 - k] - lf[xs - k] - lf[n2 - xs + k])
    return min(1.0, p)


def _versus_rest(counts: Mapping[str, tuple[int, int]], eligible: list[str], group: str) -> tuple[int, int]:
    x = sum(counts[g][0] for g in eligible if g != group)
    n = sum(counts[g][1] for g in eligible if g != group)
    return x, n


def rate_disparity(
    counts: Mapping[str, tuple[int, int]],
    *,
    metric: str = "refusal",
    min_count: int = 30,
    alpha: float = 0.001,
    test: Literal["exact", "z", "chi2"] = "exact",
    confidence: float = 0.95,
    exclude: tuple[str, ...] = ("other",),
    design_effects: Mapping[str, float] | None = None,
) -> Disparity | None:
    """`counts` maps group -> (positives, events). None when fewer than two groups are eligible.

    The gate (`exact`, the default): Fisher's exact test of the highest group against the other
    eligible groups pooled (one-sided, greater) and of the lowest against the rest (less), the
    smaller p-value Bonferroni-corrected for the 2k one-sided tests the extremes were chosen from.
    `z` is the pooled two-proportion z-test between the extreme pair (corrected for k(k-1)/2
    pairs); `chi2` the chi-square test of independence on the k x 2 table. With `design_effects`
    (group -> deff >= 1) every count is divided by its group's deff first (rounded for the exact
    test), and a group needs `min_count` effective events.
    """
    deff = _deffs(counts, design_effects)
    eff = {g: (x / deff[g], n / deff[g]) for g, (x, n) in counts.items()}
    eligible = _eligible({g: n for g, (_, n) in eff.items()}, min_count, exclude)
    if len(eligible) < 2:
        return None
    rates = {g: counts[g][0] / counts[g][1] for g in eligible}
    high = max(eligible, key=lambda g: (rates[g], g))
    low = min(eligible, key=lambda g: (rates[g], g))
    whole = {g: (round(x), max(1, round(n))) for g, (x, n) in eff.items() if g in eligible}
    (xh, nh), (xl, nl) = whole[high], whole[low]
    k = len(eligible)
    if test == "chi2":
        table = [[whole[g][0], whole[g][1] - whole[g][0]] for g in eligible]
        if sum(row[0] for row in table) == 0 or sum(row[1] for row in table) == 0:
            p = 1.0
        else:
            p = float(chi2_contingency(table, correction=False)[1])
    elif test == "z":
        p = min(1.0, two_proportion_z(xh, nh, xl, nl)[1] * k * (k - 1) / 2)
    else:
        p_high = fisher_one_sided(xh, nh, *_versus_rest(whole, eligible, high), greater=True)
        p_low = fisher_one_sided(xl, nl, *_versus_rest(whole, eligible, low), greater=False)
        p = min(1.0, min(p_high, p_low) * 2 * k)
    gap = rates[high] - rates[low]
    (exh, enh), (exl, enl) = eff[high], eff[low]
    ci_low, ci_high = newcombe_interval(exh, enh, exl, enl, confidence)
    ratio = rates[low] / rates[high] if rates[high] > 0 else 1.0
    return Disparity(
        metric, high, low, gap, ratio, p, ci_low, ci_high, counts[high][1], counts[low][1], k,
        p < alpha and gap > 0, deff[high], deff[low],
    )


def _welch_p(a: MeanStat, b: MeanStat, deff_a: float = 1.0, deff_b: float = 1.0) -> float:
    """One-sided p-value that `a`'s mean is greater than `b`'s (variances scaled by the design effects)."""
    se = math.sqrt(a.variance / a.n * deff_a + b.variance / b.n * deff_b)
    if se <= 1e-12 * max(1.0, abs(a.mean), abs(b.mean)):  # constant values: the order is certain
        return 0.0 if a.mean > b.mean + 1e-12 else 1.0
    z = (a.mean - b.mean) / se
    return _p_two_sided(z) / 2.0 if z > 0 else 1.0 - _p_two_sided(z) / 2.0


def _rest_deff(stats: Mapping[str, MeanStat], eligible: list[str], group: str, deff: Mapping[str, float]) -> float:
    others = [g for g in eligible if g != group]
    total = sum(stats[g].n for g in others)
    return sum(stats[g].n * deff[g] for g in others) / total if total else 1.0


def _rest(stats: Mapping[str, MeanStat], eligible: list[str], group: str) -> MeanStat:
    others = [stats[g] for g in eligible if g != group]
    return MeanStat(sum(s.n for s in others), sum(s.total for s in others), sum(s.total_sq for s in others))


def mean_disparity(
    stats: Mapping[str, MeanStat],
    *,
    metric: str,
    min_count: int = 30,
    alpha: float = 0.001,
    relative: bool = False,
    confidence: float = 0.95,
    exclude: tuple[str, ...] = ("other",),
    design_effects: Mapping[str, float] | None = None,
) -> Disparity | None:
    """Gap of group means; the gate is Welch's test of each extreme group against the rest pooled
    (one-sided, Bonferroni over 2k). None when fewer than two groups are eligible. With
    `design_effects` each group's variance of the mean is multiplied by its deff (the rest's by
    the count-weighted mean deff of its groups), and a group needs `min_count` effective events."""
    deff = _deffs(stats, design_effects)
    eligible = _eligible({g: s.n / deff[g] for g, s in stats.items()}, min_count, exclude)
    if len(eligible) < 2:
        return None
    high = max(eligible, key=lambda g: (stats[g].mean, g))
    low = min(eligible, key=lambda g: (stats[g].mean, g))
    sh, sl = stats[high], stats[low]
    diff = sh.mean - sl.mean
    k = len(eligible)
    p_high = _welch_p(sh, _rest(stats, eligible, high), deff[high], _rest_deff(stats, eligible, high, deff))
    p_low = _welch_p(_rest(stats, eligible, low), sl, _rest_deff(stats, eligible, low, deff), deff[low])
    p = min(1.0, min(p_high, p_low) * 2 * k)
    se = math.sqrt(sh.variance / sh.n * deff[high] + sl.variance / sl.n * deff[low])
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    low_ci, high_ci = diff - z * se, diff + z * se
    scale = 1.0
    if relative:
        scale = abs(sh.mean) if sh.mean != 0 else 1.0
    nonneg = sl.mean >= 0
    ratio = (sl.mean / sh.mean if sh.mean > 0 else 1.0) if nonneg else None
    return Disparity(
        metric, high, low, diff / scale, ratio, p, low_ci / scale, high_ci / scale, sh.n, sl.n, k,
        p < alpha and diff > 0, deff[high], deff[low],
    )
