"""Benchmark: how fast the fairness SLO alerts on a refusal shift, and how often it alerts without one.

Replays synthetic, timestamped traffic through the bias detector's core
(`BiasDetector.observe` / `findings`, the path `detect()` takes after parsing)
and the in-process SLO engine (`genai_sre.slo.engine.SLOEngine`) with the
fairness time-slice SLO, on a simulated clock, much faster than real time.

- 4 groups, Poisson arrivals at 1 request/s per group, refusal rate 5%.
- Shift runs: at a known time one group's refusal rate rises to 20% (and, in
  separate runs, to 10%); the delay is the time from the shift to the first
  alert of the fairness SLO (either tier). `--seeds` runs per shift.
- Null run: one unbiased week with a daily load swing (0.3x..1.7x) and a model
  version change half-way that moves every group alike (refusals 5% -> 8%,
  warmer and longer answers); every alert counts as a false page.

Before each run the SLO engine is given three days of good slices, as a
sidecar that has been running cleanly would have.

    python bench/bias_drift.py [--seeds 20] [--weeks 1]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from detectors.bias.detector import BiasDetector
from detectors.bias.groups import GroupValue
from detectors.bias.outcomes import Outcomes
from genai_sre.detection.base import DetectorContext
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import SLOFile, parse_slos

GROUPS = ("a", "b", "c", "d")
SLICE_S = 60.0
DAY_S = 86400.0
FAIRNESS_SLO = """
version: genai-sre/slos/v1
service: bench
slos:
  - name: fairness
    objective: 99
    period: 30d
    min_events: 3
    sli:
      kind: time_slice
      detector: bias
      finding: fairness_disparity
      threshold: 1.0
      statistic: max
      slice: 1m
    alerting:
      page: {enabled: %(page)s}
"""


@dataclass
class World:
    """Outcome model of the simulated upstream at a point in time."""

    refusal: dict[str, float]
    sentiment_mu: float = 0.35
    length_mu: float = math.log(120)
    latency_mu: float = math.log(1.5)


def traffic(
    rng: np.random.Generator, start: float, end: float, rate: Callable[[float], float], world: Callable[[float], World]
) -> Iterator[tuple[float, str, Outcomes]]:
    """Exchanges (time, group, outcomes) in time order, generated a minute at a time."""
    t = start
    while t < end:
        w = world(t)
        lam = rate(t) * SLICE_S
        batch: list[tuple[float, str, Outcomes]] = []
        for g in GROUPS:
            n = int(rng.poisson(lam))
            times = t + rng.random(n) * SLICE_S
            refused = rng.random(n) < w.refusal[g]
            sentiment = np.clip(rng.normal(w.sentiment_mu, 0.3, n), -1, 1)
            length = rng.lognormal(w.length_mu, 0.5, n)
            latency = rng.lognormal(w.latency_mu, 0.4, n)
            for i in range(n):
                if refused[i]:
                    out = Outcomes(True, float(np.clip(sentiment[i] - 0.5, -1, 1)), int(length[i] / 6) + 5,
                                   float(latency[i]) / 3)
                else:
                    out = Outcomes(False, float(sentiment[i]), int(length[i]), float(latency[i]))
                batch.append((float(times[i]), g, out))
        batch.sort(key=lambda item: item[0])
        yield from batch
        t += SLICE_S


def engine_for(page: bool, start: float) -> tuple[SLOEngine, SLOFile]:
    slos = parse_slos(FAIRNESS_SLO % {"page": "true" if page else "false"})
    engine = SLOEngine(slos, clock=lambda: start)
    # Three days of clean history, as a sidecar that has been running would have.
    k = int(3 * DAY_S // SLICE_S)
    for i in range(k):
        engine.record("fairness", True, at=start - (k - i) * SLICE_S + SLICE_S / 2)
    return engine, slos


OPTIONS: dict[str, Any] = {}


def replay(
    seed: int, start: float, end: float, rate: Callable[[float], float], world: Callable[[float], World], page: bool,
    flag_after: float = math.inf,
) -> tuple[list[float], int, int, float]:
    """Alert start times, bad slices, exchanges, and the first failing finding at or after `flag_after`."""
    rng = np.random.default_rng(seed)
    now = [start]
    detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda: now[0]), **OPTIONS)
    engine, _ = engine_for(page, start)
    alerts: list[float] = []
    slice_end = start + SLICE_S
    slice_max = None
    bad_slices = 0
    exchanges = 0
    first_flag = math.inf

    def close_slice(until: float) -> None:
        nonlocal slice_end, slice_max, bad_slices
        while slice_end <= until:
            at = slice_end - 0.001
            if slice_max is not None:
                good = slice_max < 1.0
                bad_slices += 0 if good else 1
                engine.record("fairness", good, at=at)
            for alert in engine.evaluate(at):
                if alert.status == "firing":
                    alerts.append(alert.starts_at)
            slice_max = None
            slice_end += SLICE_S

    for t, g, outcomes in traffic(rng, start, end, rate, world):
        close_slice(t)
        now[0] = t
        detector.observe(t, (GroupValue("group", g),), outcomes, f"x{exchanges}")
        exchanges += 1
        for f in detector.findings(t):
            if f.name == "fairness_disparity" and f.score is not None:
                slice_max = f.score if slice_max is None else max(slice_max, f.score)
                if f.score >= 1.0 and t >= flag_after and first_flag == math.inf:
                    first_flag = t
    close_slice(end)
    return alerts, bad_slices, exchanges, first_flag


def shift_delays(
    high: float, seeds: int, page: bool, warmup_s: float, horizon_s: float
) -> tuple[list[float], list[float]]:
    """Per seed: shift to first alert, and shift to the detector's first failing finding."""
    delays, flags = [], []
    for seed in range(seeds):
        start = 1_700_000_000.0 + seed * 7 * DAY_S
        t_shift = start + warmup_s

        def world(t: float, t_shift: float = t_shift) -> World:
            return World({g: (high if g == "d" and t >= t_shift else 0.05) for g in GROUPS})

        alerts, _, _, flag = replay(seed, start, t_shift + horizon_s, lambda t: 1.0, world, page, t_shift)
        after = [a - t_shift for a in alerts if a >= t_shift]
        delays.append(after[0] if after else math.inf)
        flags.append(flag - t_shift)
    return delays, flags


def null_week(seed: int, weeks: float, page: bool) -> tuple[int, int, int, int]:
    start = 1_800_000_000.0 + seed * 30 * DAY_S
    end = start + weeks * 7 * DAY_S
    change = start + (end - start) / 2

    def rate(t: float) -> float:
        return 1.0 + 0.7 * math.sin(2 * math.pi * (t - start) / DAY_S)

    def world(t: float) -> World:
        if t < change:
            return World({g: 0.05 for g in GROUPS})
        return World({g: 0.08 for g in GROUPS}, sentiment_mu=0.45, length_mu=math.log(160), latency_mu=math.log(1.1))

    alerts, bad, exchanges, _ = replay(seed, start, end, rate, world, page)
    slices = int((end - start) // SLICE_S)
    return len(alerts), bad, slices, exchanges


def fmt(delays: list[float]) -> tuple[str, str, int]:
    finite = [d for d in delays if math.isfinite(d)]
    missed = len(delays) - len(finite)
    med = statistics.median(delays)
    worst = max(delays)
    return _minutes(med), _minutes(worst), missed


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}" if math.isfinite(seconds) else "inf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--weeks", type=float, default=1.0)
    parser.add_argument("--null-seeds", type=int, default=1)
    parser.add_argument("--warmup-min", type=float, default=60.0)
    parser.add_argument("--horizon-min", type=float, default=60.0)
    parser.add_argument("--ticket-only", action="store_true", help="the default SLO alerting: ticket tier only")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=YAML",
                        help="a bias detector option, e.g. --option 'windows_s=[120, 600]' --option alpha=1e-4")
    args = parser.parse_args(argv)
    for item in args.option:
        key, _, value = item.partition("=")
        OPTIONS[key] = yaml.safe_load(value)
    page = not args.ticket_only
    print(f"# machine: {platform.machine()} {platform.system()} python {platform.python_version()} "
          f"cpus={os.cpu_count()}; SLO engine: genai_sre.slo.engine.SLOEngine; tiers: "
          f"{'page+ticket' if page else 'ticket only'}; detector options {OPTIONS or 'defaults'}")
    t0 = time.perf_counter()
    for label, high in (("5->20%", 0.20), ("5->10%", 0.10)):
        delays, flags = shift_delays(high, args.seeds, page, args.warmup_min * 60, args.horizon_min * 60)
        med, worst, missed = fmt(delays)
        print(f"median detection delay {label}: {med} min (worst {worst} min)")
        fmed, fworst, _ = fmt(flags)
        print(f"# {label}: detector's first failing finding after the shift: median {fmed} min (worst {fworst} min)")
        if missed:
            print(f"# {label}: {missed} of {len(delays)} runs not detected within {args.horizon_min:g} min")
        sys.stdout.flush()
    false_alerts = bad = slices = exchanges = 0
    for seed in range(args.null_seeds):
        fa, b, s, e = null_week(1000 + seed, args.weeks, page)
        false_alerts, bad, slices, exchanges = false_alerts + fa, bad + b, slices + s, exchanges + e
    weeks = args.weeks * args.null_seeds
    print(f"false pages per week: {false_alerts / weeks:g}")
    print(f"# null weeks: {weeks:g}, bad slices {bad} of {slices} ({bad / max(slices, 1):.3%}), "
          f"{exchanges} exchanges; wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
