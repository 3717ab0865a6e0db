"""Per-group outcome tallies in time buckets: memory bounded by buckets x groups, not by traffic.

A `Tally` is one flat vector: events, refusals, then per continuous metric
(sentiment, length, latency, hallucination risk) its count, sum and sum of
squares, then a fixed-bin histogram per continuous metric. Window statistics
(rates, means, variances, histograms for PSI/JS) are therefore exact without
raw values, and summing a window is one vectorised sum over ring rows.
`BucketedTallies` keeps a ring of such vectors per (attribute, group).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.bias.drift import BINS, bin_index
from detectors.bias.outcomes import MetricName, Outcomes
from detectors.bias.stats import MeanStat

__all__ = ["CONTINUOUS", "BucketedTallies", "Grouped", "Tally", "encode"]

CONTINUOUS: tuple[MetricName, ...] = ("sentiment", "length", "latency", "hallucination_risk")

Vector = npt.NDArray[np.float64]

_SUMS = {m: 2 + 3 * i for i, m in enumerate(CONTINUOUS)}
_HISTS: dict[str, tuple[int, int]] = {}
_offset = 2 + 3 * len(CONTINUOUS)
for _m in CONTINUOUS:
    _HISTS[_m] = (_offset, _offset + len(BINS[_m]) + 1)
    _offset += len(BINS[_m]) + 1
WIDTH = _offset


Delta = Vector


def encode(outcomes: Outcomes) -> Delta:
    """The vector one exchange adds to a tally (computed once, added to every ring)."""
    vec = np.zeros(WIDTH)
    vec[0] = 1.0
    if outcomes.refused:
        vec[1] = 1.0
    for metric in CONTINUOUS:
        value = outcomes.value(metric)
        if value is None:
            continue
        i = _SUMS[metric]
        vec[i] = 1.0
        vec[i + 1] = value
        vec[i + 2] = value * value
        vec[_HISTS[metric][0] + bin_index(metric, value)] = 1.0
    return vec


def _add(vec: Vector, delta: Delta) -> None:
    vec += delta


class Tally:
    """Counts, sums and histograms of the outcomes of one group over some span."""

    __slots__ = ("vec",)

    def __init__(self, vec: Vector | None = None) -> None:
        self.vec: Vector = np.zeros(WIDTH) if vec is None else vec

    @property
    def n(self) -> int:
        return int(self.vec[0])

    @property
    def refused(self) -> int:
        return int(self.vec[1])

    def add(self, outcomes: Outcomes) -> None:
        _add(self.vec, encode(outcomes))

    def merge(self, other: Tally) -> None:
        self.vec += other.vec

    def count(self, metric: str) -> int:
        return self.n if metric == "refusal" else int(self.vec[_SUMS[metric]])  # type: ignore[index]

    def mean_stat(self, metric: str) -> MeanStat:
        i = _SUMS[metric]  # type: ignore[index]
        return MeanStat(int(self.vec[i]), float(self.vec[i + 1]), float(self.vec[i + 2]))

    def hist(self, metric: str) -> list[int]:
        """Histogram counts (`refusal`: [refused, answered])."""
        if metric == "refusal":
            return [self.refused, self.n - self.refused]
        a, b = _HISTS[metric]
        return [int(v) for v in self.vec[a:b]]

    def to_json(self) -> dict[str, Any]:
        return {"layout": list(CONTINUOUS), "vec": [float(v) for v in self.vec]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        if list(data["layout"]) != list(CONTINUOUS) or len(data["vec"]) != WIDTH:
            raise ValueError("the baseline was written with a different tally layout; pin it again")
        return cls(np.asarray(data["vec"], dtype=np.float64))


Grouped = dict[str, dict[str, Tally]]


class BucketedTallies:
    """A ring of `ceil(keep_s / bucket_s) + 1` buckets per (attribute, group)."""

    def __init__(self, bucket_s: float, keep_s: float, width: int = WIDTH) -> None:
        if bucket_s <= 0 or keep_s < bucket_s:
            raise ValueError("bucket_s must be positive and keep_s at least one bucket")
        self.bucket_s = bucket_s
        self.width = width
        self.size = math.ceil(keep_s / bucket_s) + 1
        self._rings: dict[tuple[str, str], npt.NDArray[np.float64]] = {}
        self._last = -1  # newest bucket number seen

    def add(self, at: float, attribute: str, group: str, outcomes: Outcomes | Delta) -> bool:
        """Count one exchange; False when `at` is older than the ring holds."""
        n = int(at // self.bucket_s)
        if n > self._last:
            self._advance(n)
        elif n <= self._last - self.size:
            return False
        ring = self._rings.get((attribute, group))
        if ring is None:
            ring = self._rings[(attribute, group)] = np.zeros((self.size, self.width))
        _add(ring[n % self.size], encode(outcomes) if isinstance(outcomes, Outcomes) else outcomes)
        return True

    def _advance(self, n: int) -> None:
        if self._last >= 0 and n - self._last < self.size:
            slots = [m % self.size for m in range(self._last + 1, n + 1)]
            for ring in self._rings.values():
                ring[slots] = 0.0
        else:
            for ring in self._rings.values():
                ring[:] = 0.0
        self._last = n

    def span(self, start: float, end: float) -> Grouped:
        """Sums over the buckets that overlap [start, end) (whole buckets: the span is rounded out)."""
        return {a: {g: Tally(v) for g, v in groups.items()} for a, groups in self.span_vectors(start, end).items()}

    def span_vectors(self, start: float, end: float) -> dict[str, dict[str, Vector]]:
        """Like `span`, as raw summed vectors (rings of any width); groups whose first entry is 0 are left out."""
        if self._last < 0:
            return {}
        hi = min(int(math.ceil(end / self.bucket_s)) - 1, self._last)
        lo = max(int(start // self.bucket_s), self._last - self.size + 1)
        if hi < lo:
            return {}
        slots = [m % self.size for m in range(lo, hi + 1)]
        out: dict[str, dict[str, Vector]] = {}
        for (attribute, group), ring in self._rings.items():
            vec = ring[slots].sum(axis=0)
            if vec[0] > 0.5:
                out.setdefault(attribute, {})[group] = vec
        return out
