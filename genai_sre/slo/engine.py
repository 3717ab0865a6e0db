"""The in-process SLO engine: event windows in, burn-rate alerts and status out.

`record()` is O(1) and thread-safe (the proxy calls it inline through the SLI
recorder). `evaluate()`, called every evaluation interval, applies the
multiwindow multi-burn-rate policy of `burn_rate.py` to every SLO and returns
only the *changes*: newly firing alerts and resolved ones, as `Alert`
records. It also writes a snapshot when the snapshot interval has passed
(or leaves that to its caller, `snapshot=False`); `close()` writes a last one.

Alerts never depend on the snapshot: `evaluate()` computes and returns them
whatever the store does. A snapshot that fails (disk full, database locked) is
logged, counted (`on_snapshot_error`, the metric
`genai_sre_slo_snapshot_failures_total`) and retried at the next evaluation.

With `alerting=False` (the `slo.evaluate: prometheus` fleet mode) the engine
still counts, snapshots and reports `status()`, but `evaluate()` returns no
alerts: Prometheus evaluates the generated rules and Alertmanager routes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genai_sre.events import Alert
from genai_sre.slo.burn_rate import SEVERITIES, Condition, Severity, budget_remaining, conditions, error_ratio, firing
from genai_sre.slo.spec import SLOFile, SLOSpec, format_duration
from genai_sre.slo.store import EngineState, RingState, SLOStore
from genai_sre.slo.window import EventWindows, WindowSettings

__all__ = ["SLOEngine", "SLOStatus", "WindowStatus", "alert_annotations", "alert_labels", "window_settings"]

logger = logging.getLogger(__name__)

MAX_PEAK_STEPS = 20_000  # window positions `figures()` sums at most for the peak burn rate


@dataclass(frozen=True, slots=True)
class WindowStatus:
    window: str
    bad: int
    total: int
    error_ratio: float | None
    burn_rate: float | None


@dataclass(frozen=True, slots=True)
class SLOStatus:
    """One SLO now. Ratios and burn rates are None when a window saw no events."""

    name: str
    objective: float
    period: str
    error_budget: float
    windows: tuple[WindowStatus, ...]
    budget_remaining: float | None
    firing: tuple[Severity, ...]
    events_good: int
    events_bad: int

    @property
    def error_ratios(self) -> dict[str, float | None]:
        return {w.window: w.error_ratio for w in self.windows}

    @property
    def burn_rates(self) -> dict[str, float | None]:
        return {w.window: w.burn_rate for w in self.windows}


def alert_labels(slos: SLOFile, slo: SLOSpec, severity: Severity) -> dict[str, str]:
    """The label set both evaluators give an alert (the generated rules produce exactly these)."""
    sev = slo.alerting.page if severity == "page" else slo.alerting.ticket
    return {
        **slos.labels,
        **slo.labels,
        **slo.alerting.labels,
        **sev.labels,
        "alertname": slo.alert_name,
        "slo": slo.name,
        "severity": slos.severity(severity),
        "sloth_id": slos.sloth_id(slo),
        "sloth_service": slos.service,
        "sloth_slo": slo.name,
        "sloth_severity": severity,
    }


def alert_annotations(slos: SLOFile, slo: SLOSpec, severity: Severity) -> dict[str, str]:
    """Static annotations; the engine adds `burn_rate` and `budget_remaining` values."""
    sev = slo.alerting.page if severity == "page" else slo.alerting.ticket
    what = slo.description or slo.name
    out = {
        "summary": f"{slos.service} {slo.name}: error budget burn rate is too fast ({severity})",
        "description": (
            f"{what}. Objective {slo.objective:g}% over {slo.period}: the error budget is burning fast enough"
            f" to need a {severity} (multiwindow multi-burn-rate policy)."
        ),
        "runbook_url": slo.alerting.runbook_url,
    }
    return {**out, **slo.alerting.annotations, **sev.annotations}


def window_settings(slos: SLOFile) -> WindowSettings:
    """The bucket sizes for an SLO file: fine buckets of a tenth of its shortest window (10 s for 5m, at
    least 0.5 s), so short windows stay precise. The sidecar and every command reading its snapshot use this."""
    shortest = min((w for s in slos.slos for w in slos.recording_windows_s(s)), default=300.0)
    return WindowSettings(fine_bucket_s=min(10.0, max(0.5, shortest / 10)))


class _Tracked:
    __slots__ = ("spec", "windows", "conds", "min_events", "window_list")

    def __init__(self, slos: SLOFile, spec: SLOSpec, settings: WindowSettings) -> None:
        self.spec = spec
        self.window_list = slos.recording_windows_s(spec)
        self.windows = EventWindows(max(self.window_list), settings)
        self.conds: tuple[Condition, ...] = tuple(
            c
            for c in conditions(slos.alert_windows, spec.period_s)
            if (spec.alerting.page if c.severity == "page" else spec.alerting.ticket).enabled
        )
        self.min_events = slos.min_events_for(spec)


class SLOEngine:
    """Counts SLI events per SLO and evaluates burn-rate alerts on an injectable clock."""

    def __init__(
        self,
        slos: SLOFile,
        clock: Callable[[], float] = time.time,
        *,
        windows: WindowSettings | None = None,
        store: SLOStore | None = None,
        snapshot_interval_s: float = 10.0,
        alerting: bool = True,
        on_snapshot_error: Callable[[], None] | None = None,
    ) -> None:
        self.slos = slos
        self.clock = clock
        self.store = store
        self.snapshot_interval_s = snapshot_interval_s
        self.alerting = alerting
        self.on_snapshot_error = on_snapshot_error
        self.snapshot_failures = 0  # consecutive failed snapshots (0 after a good one)
        settings = windows or window_settings(slos)
        self._tracked = {s.name: _Tracked(slos, s, settings) for s in slos.slos}
        self._firing: dict[tuple[str, Severity], float] = {}
        self._lock = threading.Lock()
        self._last_snapshot = clock()
        self._unknown: set[str] = set()
        self._attachments: dict[str, tuple[Callable[[], str], Callable[[str], object]]] = {}

    def attach(self, name: str, save: Callable[[], str], load: Callable[[str], object]) -> None:
        """Save another stage's state in the same snapshot as the windows (`save` runs under the engine's
        lock, so what it saves and the windows agree), and hand it back to `load` on `restore()`."""
        self._attachments[name] = (save, load)

    def record(self, slo: str, good: bool, at: float | None = None, count: int = 1) -> None:
        t = self.clock() if at is None else at
        tracked = self._tracked.get(slo)
        if tracked is None:
            if slo not in self._unknown:
                self._unknown.add(slo)
                logger.warning("SLI event for unknown SLO %r ignored", slo)
            return
        with self._lock:
            tracked.windows.add(t, count if good else 0, 0 if good else count)

    def _counts(self, tracked: _Tracked, now: float) -> dict[float, tuple[int, int]]:
        return {w: tracked.windows.counts(now, w) for w in tracked.window_list}

    def evaluate(self, now: float | None = None, snapshot: bool = True) -> list[Alert]:
        """Alert state changes since the last call (none in fleet mode); snapshots when due and `snapshot`.

        The changes are returned even when the snapshot fails (see `try_snapshot`).
        """
        now = self.clock() if now is None else now
        changes: list[Alert] = []
        with self._lock:
            for name, tracked in self._tracked.items():
                spec = tracked.spec
                counts = self._counts(tracked, now)
                fired = firing(tracked.conds, counts, spec.error_budget, tracked.min_events)
                for severity in SEVERITIES:
                    key = (name, severity)
                    was = self._firing.get(key)
                    if severity in fired and was is None:
                        self._firing[key] = now
                        changes.append(self._alert(tracked, severity, counts, now, None))
                    elif severity not in fired and was is not None:
                        del self._firing[key]
                        changes.append(self._alert(tracked, severity, counts, was, now))
        if snapshot and self.snapshot_due(now):
            self.try_snapshot(now)
        return changes if self.alerting else []

    def snapshot_due(self, now: float | None = None) -> bool:
        """A store is set and the snapshot interval passed since the last good snapshot."""
        now = self.clock() if now is None else now
        return self.store is not None and now - self._last_snapshot >= self.snapshot_interval_s

    def try_snapshot(self, now: float | None = None) -> bool:
        """`snapshot()`, except that a failure is logged, counted and left for the next call to retry."""
        try:
            self.snapshot(now)
        except Exception as exc:  # isolation boundary: a disk or database problem must not cost an alert
            self.snapshot_failures += 1
            path = getattr(self.store, "path", "the SLO store")
            logger.warning(
                "SLO snapshot to %s failed (%d in a row): %s; alerts are unaffected, retrying at the next evaluation",
                path, self.snapshot_failures, exc, exc_info=self.snapshot_failures == 1,
            )
            if self.on_snapshot_error is not None:
                self.on_snapshot_error()
            return False
        if self.snapshot_failures:
            logger.warning("SLO snapshot written again after %d failed attempt(s)", self.snapshot_failures)
            self.snapshot_failures = 0
        return True

    def _alert(
        self, tracked: _Tracked, severity: Severity, counts: Mapping[float, tuple[int, int]],
        starts_at: float, ends_at: float | None,
    ) -> Alert:
        spec = tracked.spec
        bad, total = counts[tracked.window_list[0]]
        ratio = error_ratio(bad, total)
        pbad, ptotal = counts[spec.period_s]
        remaining = budget_remaining(error_ratio(pbad, ptotal), spec.error_budget)
        annotations = alert_annotations(self.slos, spec, severity)
        annotations["burn_rate"] = "" if ratio is None else f"{ratio / spec.error_budget:.2f}"
        annotations["budget_remaining"] = "" if remaining is None else f"{remaining * 100:.4g}%"
        burn_start = self._burn_start(tracked, starts_at)
        if burn_start is not None:
            annotations["burn_started_at"] = f"{burn_start:.0f}"
        return Alert(
            labels=alert_labels(self.slos, spec, severity),
            annotations=annotations,
            status="firing" if ends_at is None else "resolved",
            starts_at=starts_at,
            ends_at=ends_at,
        )

    def _burn_start(self, tracked: _Tracked, at: float, max_steps: int = 288) -> float | None:
        """Start of the earliest of the back-to-back shortest windows, ending at `at`, that all burn above 1x.

        With the default catalog these are 5-minute windows, looked back up to a day; incident
        figures take time to detect as the page time minus this.
        """
        step = tracked.window_list[0]
        budget = tracked.spec.error_budget
        start = None
        for k in range(max_steps):
            bad, total = tracked.windows.counts(at - k * step, step)
            if total == 0 or bad / total <= budget:
                break
            start = at - (k + 1) * step
        return start

    def figures(self, slo: str, start: float, end: float) -> dict[str, Any] | None:
        """Events, budget and burn of one SLO over [start, end], for postmortems.

        The same quantities as the alerts: `peak_burn_rate` is the largest burn rate over the
        alerts' shortest window (`window`, the window of an alert's `burn_rate` annotation) at
        every bucket position ending within [start, end], so it is never below a burn rate an
        alert reported in the interval. `budget_consumed` is the bad events of the interval
        over the period's allowed bad events; `budget_remaining` the share left at `end`.
        """
        tracked = self._tracked.get(slo)
        if tracked is None or end <= start:
            return None
        spec = tracked.spec
        step = tracked.window_list[0]
        windows = tracked.windows
        bucket = (windows.fine if step <= windows.settings.fine_span_s + 1e-9 else windows.coarse).width_s
        positions = int((end - start) // bucket) + 1
        stride = bucket * max(1, positions // MAX_PEAK_STEPS)  # at most MAX_PEAK_STEPS window sums
        with self._lock:
            bad, total = tracked.windows.counts(end, end - start)
            pbad, ptotal = tracked.windows.counts(end, spec.period_s)
            peak = 0.0
            t = end
            while t > start - 1e-9:
                wbad, wtotal = tracked.windows.counts(t, step)
                if wtotal:
                    peak = max(peak, wbad / wtotal / spec.error_budget)
                t -= stride
        allowed = spec.error_budget * ptotal
        out: dict[str, Any] = {
            "objective": spec.objective / 100.0,
            "total": total,
            "bad": bad,
            "peak_burn_rate": peak,
            "window": format_duration(step),
        }
        if allowed > 0:
            out["budget_consumed"] = bad / allowed
        remaining = budget_remaining(error_ratio(pbad, ptotal), spec.error_budget)
        if remaining is not None:
            out["budget_remaining"] = remaining
        return out

    def status(self, now: float | None = None) -> list[SLOStatus]:
        now = self.clock() if now is None else now
        out: list[SLOStatus] = []
        with self._lock:
            for name, tracked in self._tracked.items():
                spec = tracked.spec
                counts = self._counts(tracked, now)
                windows = []
                for w in tracked.window_list:
                    bad, total = counts[w]
                    ratio = error_ratio(bad, total)
                    burn = None if ratio is None else ratio / spec.error_budget
                    windows.append(WindowStatus(format_duration(w), bad, total, ratio, burn))
                pbad, ptotal = counts[spec.period_s]
                fired = firing(tracked.conds, counts, spec.error_budget, tracked.min_events)
                out.append(
                    SLOStatus(
                        name=name,
                        objective=spec.objective,
                        period=spec.period,
                        error_budget=spec.error_budget,
                        windows=tuple(windows),
                        budget_remaining=budget_remaining(error_ratio(pbad, ptotal), spec.error_budget),
                        firing=tuple(s for s in SEVERITIES if s in fired),
                        events_good=ptotal - pbad,
                        events_bad=pbad,
                    )
                )
        return out

    def snapshot(self, now: float | None = None) -> None:
        """Write the window state and firing alerts to the store (no-op without one)."""
        if self.store is None:
            return
        now = self.clock() if now is None else now
        with self._lock:
            rings: dict[tuple[str, str], RingState] = {}
            for name, tracked in self._tracked.items():
                for tier, ring in (("fine", tracked.windows.fine), ("coarse", tracked.windows.coarse)):
                    rings[(name, tier)] = RingState(ring.width_s, ring.count, ring.last, ring.to_bytes())
            firing: dict[tuple[str, str], float] = {(n, s): t for (n, s), t in self._firing.items()}
            attachments = {name: save() for name, (save, _) in self._attachments.items()}
            state = EngineState(saved_at=now, rings=rings, firing=firing, attachments=attachments)
        self.store.save(state)
        self._last_snapshot = now

    def restore(self) -> float | None:
        """Load the last snapshot; returns when it was taken, or None when there was none.

        Rings whose bucket geometry changed since the snapshot start empty (logged).
        """
        if self.store is None:
            return None
        state = self.store.load()
        if state is None:
            return None
        with self._lock:
            for (name, tier), saved in state.rings.items():
                tracked = self._tracked.get(name)
                if tracked is None:
                    continue
                ring = tracked.windows.fine if tier == "fine" else tracked.windows.coarse
                if ring.width_s != saved.width_s or ring.count != saved.count:
                    logger.warning("SLO %s: %s buckets changed since the snapshot; starting empty", name, tier)
                    continue
                ring.load(saved.last, saved.data)
            for (name, sev), since in state.firing.items():
                if name in self._tracked and sev in SEVERITIES:
                    self._firing[(name, sev)] = since  # type: ignore[index]
        for name, text in state.attachments.items():
            attached = self._attachments.get(name)
            if attached is not None:
                attached[1](text)
        self._last_snapshot = self.clock()
        return state.saved_at

    def close(self) -> None:
        """Write a last snapshot (a failure is logged and counted) and close the store."""
        if self.store is not None:
            self.try_snapshot()
            self.store.close()
