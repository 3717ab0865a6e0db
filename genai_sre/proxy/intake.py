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

OutcomeSink = Callable[[str, str, str | None, bool, bool, int], None]


class ProxyIntake:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.on_outcomes: OutcomeSink | None = None

    def update(self, worker: str, snapshot: Snapshot) -> None:
        with self._lock:
            previous = self._snapshots.get(worker)
            self._snapshots[worker] = snapshot
            self._seen[worker] = self._clock()
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
        with self._lock:
            snaps = list(self._snapshots.values())
        return merge(snaps)

    def alive(self, within_s: float) -> int:
        """Workers that reported within the last `within_s` seconds."""
        now = self._clock()
        with self._lock:
            return sum(1 for t in self._seen.values() if now - t <= within_s)
