"""Synthetic SLI event series, fed both to `promtool test rules` and to the in-process engine.

A scenario is, per SLO, the good and bad events of every step (one step =
one sample of `genai_sre_slo_events_total` = one rule evaluation). `promtool_file`
turns it into `input_series` in promtool's expanding notation; `run_engine`
records the same events (each step's events just before the step's sample
time) and evaluates the engine at every step, returning each alert's state
over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import SLOFile
from genai_sre.slo.window import WindowSettings


@dataclass
class Series:
    """Per-step event counts of one SLO (index 0 is the first sample, at t=0, always 0 events)."""

    good: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)

    def extend(self, steps: int, good: int, bad: int) -> Series:
        self.good.extend([good] * steps)
        self.bad.extend([bad] * steps)
        return self


def expanding(increments: Sequence[int], dense_from: int = 0, sparse_every: int = 1) -> str:
    """promtool's expanding notation for the cumulative counter of `increments` (sample 0 = 0).

    Before step `dense_from` only every `sparse_every`-th sample is scraped (`_` for the others):
    promtool's cost grows with the samples in the long windows, and long healthy history needs few.
    """
    values = [0]
    for inc in increments[1:]:
        values.append(values[-1] + inc)
    parts: list[str] = []
    i = 0
    while i < len(values):
        if i < dense_from and i % sparse_every:
            parts.append("_")
            i += 1
            continue
        j = i + 1
        step = values[j] - values[i] if j < len(values) else 0
        sparse = sparse_every > 1
        while j + 1 < len(values) and values[j + 1] - values[j] == step and not (sparse and j + 1 < dense_from):
            j += 1
        if j >= len(values) or (sparse and j < dense_from):
            parts.append(f"{values[i]}")
            i += 1
            continue
        n = j - i
        parts.append(f"{values[i]}+{step}x{n}" if step else f"{values[i]}x{n}")
        i = j + 1
    return " ".join(parts)


def input_series(series: dict[str, Series], dense_from: int = 0, sparse_every: int = 1) -> list[dict[str, str]]:
    out = []
    for slo, s in series.items():
        for outcome, incs in (("good", s.good), ("bad", s.bad)):
            out.append({
                "series": f'genai_sre_slo_events_total{{slo="{slo}",outcome="{outcome}"}}',
                "values": expanding(incs, dense_from, sparse_every),
            })
    return out


def run_engine(
    slos: SLOFile, series: dict[str, Series], step_s: float
) -> dict[tuple[str, str], list[bool]]:
    """(slo, severity) -> firing at each step, as the engine evaluates it on the same events."""
    engine = SLOEngine(slos, clock=lambda: 0.0, windows=WindowSettings(fine_bucket_s=10.0))
    steps = max(len(s.good) for s in series.values())
    state = {(slo, sev): False for slo in series for sev in ("page", "ticket")}
    out: dict[tuple[str, str], list[bool]] = {key: [] for key in state}
    for i in range(steps):
        t = i * step_s
        for slo, s in series.items():
            if i > 0 and i < len(s.good):
                if s.good[i]:
                    engine.record(slo, True, at=t - 1, count=s.good[i])
                if s.bad[i]:
                    engine.record(slo, False, at=t - 1, count=s.bad[i])
        for alert in engine.evaluate(now=t):
            state[(alert.labels["slo"], alert.labels["severity"])] = alert.status == "firing"
        for key, firing in state.items():
            out[key].append(firing)
    return out


def transitions(states: list[bool]) -> list[int]:
    return [i for i in range(1, len(states)) if states[i] != states[i - 1]]


def alert_check(alertname: str, slo: str, severity: str, step: int, step_s: float, firing: bool) -> dict[str, Any]:
    """A promql_expr_test asserting whether the alert fires at `step`, through the ALERTS series."""
    expr = f'count(ALERTS{{alertname="{alertname}", slo="{slo}", severity="{severity}", alertstate="firing"}})'
    minutes = int(step * step_s // 60)
    return {"expr": expr, "eval_time": f"{minutes}m", "exp_samples": [{"labels": "{}", "value": 1}] if firing else []}


def parity_checks(
    slos: SLOFile, engine_states: dict[tuple[str, str], list[bool]], step_s: float
) -> list[dict[str, Any]]:
    """For every engine transition at step T: promtool at T-2 matches the engine before it, at T+1 after it.

    Together these allow promtool to change state at T-1, T or T+1: within one evaluation step.
    """
    checks = []
    for (slo, severity), states in engine_states.items():
        name = slos.get(slo).alert_name
        for t in transitions(states):
            if t - 2 >= 0:
                checks.append(alert_check(name, slo, severity, t - 2, step_s, states[t - 1]))
            if t + 1 < len(states):
                checks.append(alert_check(name, slo, severity, t + 1, step_s, states[t]))
    return checks
