"""The burn-rate maths, as pure functions (SRE Workbook ch. 5, Sloth's layout).

- error ratio = bad / total over a window (None when the window saw no events);
- burn rate = error ratio / error budget, where error budget = 1 - objective;
- budget remaining = 1 - period error ratio / error budget (Sloth's
  `slo:period_error_budget_remaining:ratio`): 1 is untouched, 0 spent, < 0 overspent;
- a condition (severity, long window, short window, factor) holds when both
  windows burn strictly faster than `factor * budget` and each window holds at
  least `min_events` events (the low-traffic guard the generated rules carry too).

The period ratio is traffic-weighted (bad / total over the whole period) in
both evaluators; `rules.py` writes the same thing as a ratio of `rate()`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from genai_sre.slo.spec import AlertWindows

__all__ = [
    "Condition",
    "Severity",
    "budget_remaining",
    "burn_rate",
    "conditions",
    "error_ratio",
    "firing",
    "holds",
]

Severity = Literal["page", "ticket"]
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")


@dataclass(frozen=True, slots=True)
class Condition:
    severity: Severity
    long_s: float
    short_s: float
    factor: float


def error_ratio(bad: int, total: int) -> float | None:
    return bad / total if total > 0 else None


def burn_rate(bad: int, total: int, error_budget: float) -> float | None:
    ratio = error_ratio(bad, total)
    return None if ratio is None else ratio / error_budget


def budget_remaining(period_ratio: float | None, error_budget: float) -> float | None:
    return None if period_ratio is None else 1.0 - period_ratio / error_budget


def conditions(windows: AlertWindows, period_s: float) -> tuple[Condition, ...]:
    """The catalog's conditions with factors scaled to the period."""
    out: list[Condition] = []
    for severity, items in (("page", windows.page), ("ticket", windows.ticket)):
        for w in items:
            out.append(Condition(severity, w.long_s, w.short_s, w.factor(period_s)))  # type: ignore[arg-type]
    return tuple(out)


def holds(
    cond: Condition, counts: Mapping[float, tuple[int, int]], error_budget: float, min_events: int
) -> bool:
    """Both windows of `cond` burn faster than its factor, with enough events. `counts`: window -> (bad, total)."""
    threshold = cond.factor * error_budget  # the same product the PromQL computes
    for window in (cond.short_s, cond.long_s):
        bad, total = counts[window]
        if total <= 0 or total < min_events or not bad / total > threshold:
            return False
    return True


def firing(
    conds: tuple[Condition, ...], counts: Mapping[float, tuple[int, int]], error_budget: float, min_events: int
) -> dict[Severity, Condition]:
    """Severity -> the first condition that holds, for every severity that fires."""
    out: dict[Severity, Condition] = {}
    for cond in conds:
        if cond.severity not in out and holds(cond, counts, error_budget, min_events):
            out[cond.severity] = cond
    return out
