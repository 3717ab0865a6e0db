"""Run every configured detector on an exchange: timed, sampled, budgeted and isolated.

One broken detector never stops the others and never reaches a client: a
raise or a timeout is counted, logged once per interval, and leaves the
exchange unscored by that detector (quality SLIs then leave it out). Sampling
and a CPU budget let expensive detectors score a share of traffic under load;
the share actually scored is exported per detector.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genai_sre.detection.base import Detector
from genai_sre.events import DetectorOutcome, Evaluation, Exchange, Finding
from genai_sre.telemetry.metrics import Metrics

__all__ = ["DetectorRunner", "DetectorSlot", "FindingBoard"]

logger = logging.getLogger(__name__)


@dataclass
class DetectorSlot:
    """One configured detector instance and its run policy."""

    name: str
    detector: Detector
    sample_rate: float = 1.0
    timeout_s: float = 5.0
    cpu_budget: float | None = None  # share of one core this detector may use, as a token bucket

    @property
    def after(self) -> tuple[str, ...]:
        """The detectors whose findings this one reads (its `after` attribute)."""
        return tuple(getattr(self.detector, "after", ()) or ())


class FindingBoard:
    """The findings of the exchanges being evaluated, for detectors that run `after` others."""

    def __init__(self) -> None:
        self._by_exchange: dict[str, list[Finding]] = {}

    def of(self, exchange_id: str) -> Sequence[Finding]:
        return tuple(self._by_exchange.get(exchange_id, ()))


class _Budget:
    """A token bucket in seconds of work per second of wall time."""

    def __init__(self, share: float, burst_s: float, clock: Callable[[], float]) -> None:
        self.share = share
        self.burst = burst_s
        self.tokens = burst_s
        self.clock = clock
        self.last = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.share)
        self.last = now
        return self.tokens > 0

    def spend(self, seconds: float) -> None:
        self.tokens -= seconds


class DetectorRunner:
    def __init__(
        self,
        slots: Sequence[DetectorSlot],
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_interval_s: float = 60.0,
        rng: random.Random | None = None,
        board: FindingBoard | None = None,
    ) -> None:
        self.slots = list(slots)
        self.board = board or FindingBoard()
        names = {s.name for s in self.slots}
        # Two stages: detectors that read others' findings start once those finished.
        self._late = [s for s in self.slots if set(s.after) & names]
        self._early = [s for s in self.slots if s not in self._late]
        self.metrics = metrics
        self.clock = clock
        self.log_interval_s = log_interval_s
        self.rng = rng or random.Random()
        self._budgets = {s.name: _Budget(s.cpu_budget, 1.0, clock) for s in self.slots if s.cpu_budget}
        self._last_log: dict[str, float] = {}
        self._recent: dict[str, deque[bool]] = {s.name: deque(maxlen=1000) for s in self.slots}
        self.counts: dict[tuple[str, str], int] = {}

    async def evaluate(self, exchange: Exchange) -> Evaluation:
        findings: list[Finding] = []
        outcomes: dict[str, DetectorOutcome] = {}
        for stage in (self._early, self._late):
            if not stage:
                continue
            if stage is self._late:
                self.board._by_exchange[exchange.id] = findings
            try:
                results = await asyncio.gather(*(self._run_one(slot, exchange) for slot in stage))
            finally:
                self.board._by_exchange.pop(exchange.id, None)
            for slot, (outcome, found) in zip(stage, results, strict=True):
                outcomes[slot.name] = outcome
                findings.extend(found)
        return Evaluation(exchange=exchange, findings=tuple(findings), outcomes=outcomes)

    async def _run_one(self, slot: DetectorSlot, exchange: Exchange) -> tuple[DetectorOutcome, list[Finding]]:
        if slot.sample_rate < 1.0 and self.rng.random() >= slot.sample_rate:
            return self._done(slot.name, "sampled_out", []), []
        budget = self._budgets.get(slot.name)
        if budget is not None and not budget.allow():
            return self._done(slot.name, "over_budget", []), []
        start = self.clock()
        outcome: DetectorOutcome = "scored"
        stamped: list[Finding] = []
        try:
            found = await asyncio.wait_for(slot.detector.detect(exchange), slot.timeout_s)
            stamped = [dataclasses.replace(f, detector=slot.name, exchange_id=exchange.id) for f in found]
        except TimeoutError:
            self._log(slot.name, "timed out after %.1fs on exchange %s", slot.timeout_s, exchange.id)
            outcome = "timeout"
        except Exception:  # noqa: BLE001  # isolation boundary: one broken detector must not stop the others
            self._log(slot.name, "failed (raised, or returned no findings list) on %s", exchange.id, exc_info=True)
            outcome = "failed"
        elapsed = self.clock() - start
        if budget is not None:
            budget.spend(elapsed)  # failures and timeouts cost their time too
        return self._done(slot.name, outcome, stamped, elapsed), stamped

    def _done(
        self, name: str, outcome: DetectorOutcome, found: list[Finding], elapsed: float | None = None
    ) -> DetectorOutcome:
        key = (name, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        recent = self._recent[name]
        recent.append(outcome == "scored")
        if self.metrics is not None:
            self.metrics.counter("genai_sre_detector_runs").labels(name, outcome).inc()
            self.metrics.gauge("genai_sre_detector_scored_ratio").labels(name).set(sum(recent) / len(recent))
            if elapsed is not None:
                self.metrics.histogram("genai_sre_detector_duration_seconds").labels(name).observe(elapsed)
        return outcome

    def _log(self, name: str, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log a detector failure at most once per interval per detector."""
        now = self.clock()
        if now - self._last_log.get(name, -1e18) >= self.log_interval_s:
            self._last_log[name] = now
            logger.error("detector %s %s", name, msg % args, exc_info=exc_info)

    def scored_share(self, name: str) -> float:
        recent = self._recent[name]
        return sum(recent) / len(recent) if recent else 0.0

    async def aclose(self) -> None:
        for slot in self.slots:
            try:
                await slot.detector.aclose()
            except Exception:  # closing one detector must not stop closing the rest
                logger.exception("detector %s failed to close", slot.name)
