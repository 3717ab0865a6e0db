"""The agent's side of the proxy statistics: the latest snapshot of each worker, and SLI events from their changes.

A worker's snapshot is cumulative, so `update()` keeps only the newest one per
worker (a repeated or late snapshot changes nothing) and `merged()` is the sum
over workers, live or gone (the totals of a worker that exited stay counted).
The change of each worker's `outcomes` counters since its previous snapshot
becomes availability SLI events (`on_outcomes(route, upstream, tenant, ok,
probe, n)`), so every proxied request counts exactly once in the SLOs, whatever
happens to captures on the way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from genai_sre.proxy.stats import OUTCOMES, Snapshot, merge

__all__ = ["OutcomeSink", "ProxyIntake"]

GAUGES_LIVE_S = 10.0  # a worker silent this long no longer counts in gauges (requests in flight)

OutcomeSink = Callable[[str, str, str | None, bool, bool, int], None]


class ProxyIntake:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._seen: dict[str, tuple[float, str]] = {}  # worker -> (when, state)
        self._merged: Snapshot | None = None
        self._lock = threading.Lock()
        self._clock = clock
        self.on_outcomes: OutcomeSink | None = None

    def update(self, worker: str, state: str, snapshot: Snapshot) -> None:
        """The newest cumulative counters of `worker`, which is `serving`, `draining` or `stopped`."""
        with self._lock:
            previous = self._snapshots.get(worker)
            self._snapshots[worker] = snapshot
            self._seen[worker] = (self._clock(), state)
            self._merged = None
        sink = self.on_outcomes
        if sink is None:
            return
        before = previous.counters.get(OUTCOMES, {}) if previous is not None else {}
        for key, total in snapshot.counters.get(OUTCOMES, {}).items():
            n = total - before.get(key, 0)
            if n > 0:
                route, upstream, tenant, ok, probe = key
                sink(route, upstream, tenant or None, ok == "1", probe == "1", n)

    def merged(self) -> Snapshot:
        """Counters: the sum over every worker this agent has heard of, live or gone; gauges: live ones only."""
        with self._lock:
            if self._merged is None:
                now = self._clock()
                live = {w for w, (t, state) in self._seen.items() if state != "stopped" and now - t <= GAUGES_LIVE_S}
                total = merge(list(self._snapshots.values()))
                gauges = merge([s for w, s in self._snapshots.items() if w in live]).gauges
                self._merged = Snapshot(total.counters, total.histograms, gauges)
            return self._merged

    def serving(self, within_s: float) -> int:
        """Workers that reported within the last `within_s` seconds that they take new requests."""
        now = self._clock()
        with self._lock:
            return sum(1 for t, state in self._seen.values() if now - t <= within_s and state == "serving")

    def live(self, within_s: float = GAUGES_LIVE_S) -> set[str]:
        """Workers that reported within the last `within_s` seconds and have not stopped."""
        now = self._clock()
        with self._lock:
            return {w for w, (t, state) in self._seen.items() if state != "stopped" and now - t <= within_s}

    def in_flight(self) -> int:
        """Requests the workers are forwarding now (as of their last report)."""
        return int(sum(self.merged().gauges.get("genai_sre_in_flight_requests", {}).values()))
