"""The agent's side of the proxy statistics: the latest snapshot of each worker, and SLI events from their changes.

A worker's snapshot is cumulative, so `update()` keeps only the newest one per
worker (a repeated or late snapshot changes nothing) and `merged()` is the sum
over workers, live or gone (the totals of a worker that exited stay counted).

The growth of each worker's `outcomes` counters beyond what was already
*accounted* becomes availability SLI events (`on_outcomes(route, upstream,
tenant, ok, probe, n)`), so every proxied request counts exactly once in the
SLOs, whatever happens to captures on the way. An event is accounted only once
the sink returned, and `state()` / `restore()` let the SLO engine save the
accounted totals in the same snapshot as its windows: an agent that restarts
picks up where its last snapshot left off, never counting a worker's earlier
requests a second time. The saved state belongs to one `session` (one run of
the supervisor): a new run starts from zero.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from genai_sre.proxy.stats import OUTCOMES, Key, Snapshot, merge

__all__ = ["OutcomeSink", "ProxyIntake"]

GAUGES_LIVE_S = 10.0  # a worker silent this long no longer counts in gauges (requests in flight)

OutcomeSink = Callable[[str, str, str | None, bool, bool, int], None]


class ProxyIntake:
    def __init__(self, session: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.session = session
        self._snapshots: dict[str, Snapshot] = {}
        self._accounted: dict[str, dict[Key, int]] = {}  # worker -> outcome totals already turned into events
        self._seen: dict[str, tuple[float, str]] = {}  # worker -> (when, state)
        self._merged: Snapshot | None = None
        self._lock = threading.Lock()
        self._clock = clock
        self.on_outcomes: OutcomeSink | None = None

    def update(self, worker: str, state: str, snapshot: Snapshot) -> None:
        """The newest cumulative counters of `worker`, which is `serving`, `draining` or `stopped`."""
        with self._lock:
            self._snapshots[worker] = snapshot
            self._seen[worker] = (self._clock(), state)
            self._merged = None
            accounted = dict(self._accounted.get(worker, {}))
        sink = self.on_outcomes
        if sink is None:
            return
        for key, total in snapshot.counters.get(OUTCOMES, {}).items():
            n = total - accounted.get(key, 0)
            if n > 0:
                route, upstream, tenant, ok, probe = key
                sink(route, upstream, tenant or None, ok == "1", probe == "1", n)
                with self._lock:
                    self._accounted.setdefault(worker, {})[key] = total

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

    # -- persistence (saved with the SLO engine's snapshot) ------------------------------------

    def state(self) -> str:
        """Counters of every worker and the accounted outcomes, as JSON (thread-safe)."""
        with self._lock:
            workers: dict[str, Any] = {}
            for worker, snap in self._snapshots.items():
                workers[worker] = {
                    "counters": [[fam, list(k), v] for fam, series in snap.counters.items() for k, v in series.items()],
                    "histograms": [
                        [fam, list(k), counts, total]
                        for fam, series in snap.histograms.items()
                        for k, (counts, total) in series.items()
                    ],
                    "accounted": [[list(k), v] for k, v in self._accounted.get(worker, {}).items()],
                }
        return json.dumps({"session": self.session, "workers": workers}, separators=(",", ":"))

    def restore(self, text: str) -> bool:
        """Load a saved state of the same session; True when loaded."""
        try:
            data = json.loads(text)
        except ValueError:
            return False
        if not isinstance(data, dict) or not self.session or data.get("session") != self.session:
            return False
        with self._lock:
            for worker, saved in data.get("workers", {}).items():
                counters: dict[str, dict[Key, int]] = {}
                for fam, key, value in saved.get("counters", []):
                    counters.setdefault(fam, {})[tuple(key)] = int(value)
                histograms: dict[str, dict[Key, tuple[list[int], float]]] = {}
                for fam, key, counts, total in saved.get("histograms", []):
                    histograms.setdefault(fam, {})[tuple(key)] = (list(counts), float(total))
                if worker not in self._snapshots:
                    self._snapshots[worker] = Snapshot(counters, histograms, {})
                    self._seen[worker] = (self._clock() - GAUGES_LIVE_S - 1, "stopped")
                self._accounted[worker] = {tuple(k): int(v) for k, v in saved.get("accounted", [])}
            self._merged = None
        return True
