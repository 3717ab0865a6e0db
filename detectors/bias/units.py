"""Units of evidence: a user's, session's or prompt's repeated requests are one cluster, not many trials.

Exchanges are not independent. A refused user retries the same prompt; a session sends several
requests whose outcomes resemble each other; an application asks the same canned question again and
again. Counting every exchange as an independent trial makes a gap look far more certain than it is
(a user who retries a refused prompt twice adds three refusals to their group). The bias detector
therefore groups exchanges into *units*:

- `user`: the end user or session (`Exchange.user_key`, the parser's pseudonym of the OpenAI `user`
  or `safety_identifier` field, Anthropic `metadata.user_id`, or the configured session header);
- `prompt`: a fingerprint of the request's messages, so identical prompts (retries) are one unit.

The first source an exchange has wins; an exchange with none is its own unit. A unit's requests
within one window of its first request form one cluster per (attribute, group); the next request
after that starts a new cluster. For each window, group and metric the detector then estimates the
design effect

    deff = cluster-robust variance of the group's rate (or mean) / its variance if independent

from the clusters' moments, and the tests and intervals use the effective count n / deff (Kish's
effective sample size; for a rate this is the first-order Rao-Scott correction). Independent
exchanges give deff close to 1 and change nothing; a refused prompt retried twice, with the retries
refused again, counts about once.

The moments are kept like the outcome tallies: per (attribute, group) in time buckets, a cluster's
moments in the bucket of its latest request (moved as it grows), so a window sees every cluster
active in it. Memory is bounded by buckets x groups, plus the open clusters (`max_units`, oldest
dropped first).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectors.bias.window import _SUMS, CONTINUOUS, BucketedTallies, Delta
from genai_sre.events import Exchange

__all__ = [
    "UNIT_SOURCES",
    "ClusterMoments",
    "UnitTracker",
    "prompt_fingerprint",
    "unit_key",
]

Vector = npt.NDArray[np.float64]

UnitSource = Literal["user", "prompt"]
UNIT_SOURCES: tuple[UnitSource, ...] = ("user", "prompt")

# A cluster's state u: [m, y, then per continuous metric (m_k, s_k)]: requests, refusals, and per
# metric the number of values and their sum.
_STATE = 2 + 2 * len(CONTINUOUS)
# Its moments f(u): [1, m, y, m^2, y^2, y*m, then per metric (1[m_k>0], m_k, s_k, m_k^2, s_k^2, s_k*m_k)].
_PER_METRIC = 6
WIDTH = 6 + _PER_METRIC * len(CONTINUOUS)
_METRIC_BASE: dict[str, int] = {metric: 6 + _PER_METRIC * i for i, metric in enumerate(CONTINUOUS)}
_STATE_INDEX = np.array([0, 1, *[j for metric in CONTINUOUS for j in (_SUMS[metric], _SUMS[metric] + 1)]])


def prompt_fingerprint(exchange: Exchange) -> str | None:
    """A short digest of what was asked (every message, else the question); None when nothing was."""
    if exchange.messages:
        text = "\x1e".join(f"{m.role}\x1f{m.content}" for m in exchange.messages)
    else:
        text = exchange.question or exchange.context_text
    if not text:
        return None
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def unit_key(exchange: Exchange, sources: Sequence[str]) -> str | None:
    """The unit an exchange belongs to: the first of `sources` it has (`user`, `prompt`), or None."""
    for source in sources:
        if source == "user" and exchange.user_key:
            return f"u:{exchange.user_key}"
        if source == "prompt":
            fp = prompt_fingerprint(exchange)
            if fp is not None:
                return f"p:{fp}"
    return None


def _state_delta(delta: Delta) -> list[float]:
    """What one exchange (its tally vector) adds to its cluster's state."""
    return [float(v) for v in delta[_STATE_INDEX]]


_ZERO6 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _moments(u: Sequence[float]) -> Vector:
    """f(u): per (count, sum) pair of the state, (1[count > 0], count, sum, count^2, sum^2, sum*count)."""
    out: list[float] = []
    for i in range(0, _STATE, 2):
        m, s = u[i], u[i + 1]
        out.extend((1.0, m, s, m * m, s * s, s * m) if m > 0 else _ZERO6)
    return np.array(out)


@dataclass(frozen=True, slots=True)
class ClusterMoments:
    """Sums over the clusters of one group in a window, and the design effects they give."""

    vec: Vector

    @property
    def clusters(self) -> int:
        return int(self.vec[0])

    def rate_deff(self) -> float:
        """Design effect of the group's refusal rate (1 when it cannot be estimated)."""
        return _deff(*self.rate_terms())

    def mean_deff(self, metric: str, variance: float) -> float:
        """Design effect of the group's mean of `metric`, given the per-exchange variance of its values."""
        return _deff(*self.mean_terms(metric, variance))

    def rate_terms(self) -> tuple[float, float, float, float]:
        k, m, y, qmm, qyy, qym = (float(v) for v in self.vec[0:6])
        return _terms(k, m, y, qmm, qyy, qym, None)

    def mean_terms(self, metric: str, variance: float) -> tuple[float, float, float, float]:
        b = _METRIC_BASE[metric]
        k, m, s, qmm, qss, qsm = (float(v) for v in self.vec[b : b + _PER_METRIC])
        return _terms(k, m, s, qmm, qss, qsm, variance)


def _terms(
    k: float, m: float, s: float, qmm: float, qss: float, qsm: float, variance: float | None
) -> tuple[float, float, float, float]:
    """(clusters, requests, robust residual k/(k-1) * sum((s_i - r m_i)^2), m * independent variance).

    With clusters i of size m_i and totals s_i and r = s/m, the cluster-robust variance of r is
    residual / m^2 and its variance if the values were independent is variance / m (for a rate,
    r (1 - r) / m): the design effect is residual / (m * variance).
    """
    if k < 2 or m <= 1:
        return k, m, 0.0, 0.0
    r = s / m
    base = r * (1.0 - r) if variance is None else variance
    if base <= 1e-12:
        return k, m, 0.0, 0.0
    residual = (k / (k - 1.0)) * max(0.0, qss - 2.0 * r * qsm + r * r * qmm)
    return k, m, residual, m * base


def _deff(k: float, m: float, residual: float, base: float) -> float:
    """The design effect, clamped to [1, m]: never more certain than independent exchanges, never
    less than one unit of evidence in all (a window whose requests all came from one unit)."""
    if m <= 1:
        return 1.0
    if k < 2:
        return m
    if base <= 0.0:
        return 1.0
    return min(max(residual / base, 1.0), m)


class _Clusters:
    """The open clusters and their bucketed moments for one window length."""

    def __init__(self, window_s: float, bucket_s: float, max_units: int) -> None:
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.ring = BucketedTallies(bucket_s, window_s + 2 * bucket_s, width=WIDTH)
        self.max_units = max_units
        # key -> (first request, bucket time of the latest, state, its moments); ordered by latest request
        self.open: OrderedDict[tuple[str, str, str], tuple[float, float, list[float], Vector]] = OrderedDict()
        self._next_expiry = float("-inf")

    def add(self, at: float, attribute: str, group: str, unit: str | None, du: list[float]) -> None:
        if unit is None:
            self.ring.add(at, attribute, group, _moments(du))
            return
        if at >= self._next_expiry:
            self._expire(at)
            self._next_expiry = at + self.bucket_s
        key = (unit, attribute, group)
        entry = self.open.pop(key, None)
        if entry is not None and at - entry[0] <= self.window_s:
            first, last, u, old = entry
            u = list(map(float.__add__, u, du))
            new = _moments(u)
            place = max(at, last)
            if int(place // self.bucket_s) == int(last // self.bucket_s):
                self.ring.add(place, attribute, group, new - old)
            else:  # move the cluster's moments to the bucket of its latest request
                self.ring.add(last, attribute, group, -old)
                self.ring.add(place, attribute, group, new)
        else:
            first, place, u = at, at, du
            new = _moments(u)
            self.ring.add(place, attribute, group, new)
        self.open[key] = (first, place, u, new)
        while len(self.open) > self.max_units:
            self.open.popitem(last=False)  # its moments stay where they are; its next request starts anew

    def _expire(self, now: float) -> None:
        while self.open:
            key, entry = next(iter(self.open.items()))
            if now - entry[0] <= self.window_s:
                break
            del self.open[key]


class UnitTracker:
    """Cluster moments per (attribute, group), one tracker per window length (clusters as long as the window)."""

    def __init__(self, windows_s: Iterable[float], bucket_s: float, max_units: int = 50_000) -> None:
        if max_units < 1:
            raise ValueError("max_units must be at least 1")
        self._by_window = {w: _Clusters(w, bucket_s, max_units) for w in sorted(set(windows_s))}

    def add(self, at: float, attribute: str, group: str, unit: str | None, delta: Delta) -> None:
        du = _state_delta(delta)
        for clusters in self._by_window.values():
            clusters.add(at, attribute, group, unit, du)

    def span(self, window_s: float, now: float) -> dict[str, dict[str, ClusterMoments]]:
        """The clusters active in [now - window_s, now), per attribute and group."""
        clusters = self._by_window[window_s]
        out: dict[str, dict[str, ClusterMoments]] = {}
        for attribute, groups in clusters.ring.span_vectors(now - window_s, now).items():
            out[attribute] = {g: ClusterMoments(v) for g, v in groups.items()}
        return out


def design_effects(
    moments: Mapping[str, ClusterMoments], metric: str, variances: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Design effect per group for `metric` (`refusal`, or a continuous metric with its variances).

    Each group gets the larger of its own design effect and the one pooled over all groups (each
    group's clusters taken around its own rate or mean, so a gap between groups does not inflate
    it), as the Rao-Scott correction of a table test pools them. A group's own estimate says little
    when it saw no refusal, or a handful: its clusters then look independent although the process
    that made them is as clustered as everyone's.
    """
    terms: dict[str, tuple[float, float, float, float]] = {}
    for group, cm in moments.items():
        if metric == "refusal":
            terms[group] = cm.rate_terms()
        elif variances is not None and group in variances:
            terms[group] = cm.mean_terms(metric, variances[group])
    residual = sum(t[2] for t in terms.values())
    base = sum(t[3] for t in terms.values())
    pooled = max(1.0, residual / base) if base > 0 else 1.0
    return {group: max(_deff(*t), min(pooled, max(t[1], 1.0))) for group, t in terms.items()}
