"""The proxy's inline counters: plain cumulative numbers, cheap to update and to ship.

The forwarding path updates dictionaries keyed by label tuples (a dict lookup
and an integer add per counter, a bisect per histogram); nothing here takes a
lock, touches a file or builds a Prometheus object. `snapshot()` returns the
cumulative state as plain data. A proxy worker ships snapshots to the agent
(`genai_sre.proxy.channel`); because they are cumulative, a snapshot that is
lost or repeated changes nothing, and an agent that restarts learns the exact
totals from the next one. The agent exposes them on `/metrics`
(`genai_sre.telemetry.proxy_collector`) and turns the changes of `outcomes`
into availability SLI events.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from genai_sre.telemetry.metrics import spec

__all__ = ["MAX_GAUGES", "OUTCOMES", "Histogram", "ProxyStats", "Snapshot", "merge"]

Key = tuple[str, ...]


class Histogram:
    """Cumulative bucket counts for fixed upper bounds (Prometheus `le` semantics), plus the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def state(self) -> tuple[list[int], float]:
        return list(self.counts), self.sum


@dataclass(frozen=True)
class Snapshot:
    """Cumulative proxy statistics of one worker at one moment (picklable, plain data)."""

    counters: dict[str, dict[Key, int]] = field(default_factory=dict)
    histograms: dict[str, dict[Key, tuple[list[int], float]]] = field(default_factory=dict)
    gauges: dict[str, dict[Key, float]] = field(default_factory=dict)


# counter families besides the exported metrics: `outcomes` feeds the availability SLIs
OUTCOMES = "outcomes"  # (route, upstream, tenant or "", ok "1"/"0", probe "1"/"0")
# gauges whose sum over workers means nothing: merged as the largest value (1 when any worker is failed over)
MAX_GAUGES = frozenset({"genai_sre_failover_active"})


class ProxyStats:
    """Every number the forwarding path records, as plain cumulative values."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Key, int]] = {}
        self.histograms: dict[str, dict[Key, Histogram]] = {}
        self.gauges: dict[str, dict[Key, float]] = {}
        self._bounds: dict[str, tuple[float, ...]] = {}

    def inc(self, family: str, key: Key, amount: int = 1) -> None:
        series = self.counters.get(family)
        if series is None:
            series = self.counters[family] = {}
        series[key] = series.get(key, 0) + amount

    def observe(self, family: str, key: Key, value: float) -> None:
        series = self.histograms.get(family)
        if series is None:
            series = self.histograms[family] = {}
        h = series.get(key)
        if h is None:
            bounds = self._bounds.get(family)
            if bounds is None:
                bounds = self._bounds[family] = spec(family).buckets
            h = series[key] = Histogram(bounds)
        h.observe(value)

    def add(self, family: str, key: Key, amount: float) -> None:
        """Gauges: add (or subtract) `amount`."""
        series = self.gauges.get(family)
        if series is None:
            series = self.gauges[family] = {}
        series[key] = series.get(key, 0) + amount

    def get(self, family: str, key: Key) -> int:
        return self.counters.get(family, {}).get(key, 0)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            counters={f: dict(s) for f, s in self.counters.items()},
            histograms={f: {k: h.state() for k, h in s.items()} for f, s in self.histograms.items()},
            gauges={f: dict(s) for f, s in self.gauges.items()},
        )


def merge(snapshots: list[Snapshot]) -> Snapshot:
    """The sum of several workers' snapshots (counters, histograms and gauges add up)."""
    counters: dict[str, dict[Key, int]] = {}
    histograms: dict[str, dict[Key, tuple[list[int], float]]] = {}
    gauges: dict[str, dict[Key, float]] = {}
    for snap in snapshots:
        for fam, series in snap.counters.items():
            out = counters.setdefault(fam, {})
            for k, v in series.items():
                out[k] = out.get(k, 0) + v
        for fam, hseries in snap.histograms.items():
            hout = histograms.setdefault(fam, {})
            for k, (counts, total) in hseries.items():
                prev = hout.get(k)
                if prev is None:
                    hout[k] = (counts, total)
                else:
                    hout[k] = ([a + b for a, b in zip(prev[0], counts, strict=True)], prev[1] + total)
        for fam, gseries in snap.gauges.items():
            gout = gauges.setdefault(fam, {})
            if fam in MAX_GAUGES:
                for k, g in gseries.items():
                    gout[k] = max(gout.get(k, g), g)
                continue
            for k, g in gseries.items():
                gout[k] = gout.get(k, 0) + g
    return Snapshot(counters, histograms, gauges)
