"""Benchmark: how fast the shipped fairness SLO alerts on a refusal shift, and whether it alerts without one.

Replays synthetic, timestamped traffic through the bias detector's core
(`BiasDetector.observe` / `findings`, the path `detect()` takes after parsing,
with each exchange's unit of evidence) and the in-process SLO engine
(`genai_sre.slo.engine.SLOEngine`) with the fairness SLO, its alert windows and
its `min_events` read from the shipped `configs/slos.yaml`, on a simulated
clock, much faster than real time. Detector options are the defaults unless
`--option` overrides them.

Traffic, per group (4 groups, 1 first-attempt request/s each on average):

- users arrive in sessions of several requests (geometric, mean
  `--session-mean`), `--think-s` apart on average; a share `--user-share` of
  sessions sends a user id (the OpenAI `user` field), the others are known by
  their prompts only;
- each session has its own propensity to be refused (gamma-distributed
  multiplier of the base rate, mean 1): some users ask for what gets refused;
- a refused request is retried 0, 1 or 2 times (uniform) with the same prompt
  a few seconds later, and a retry is refused again with probability
  `--retry-refused` (refusals of one prompt are correlated);
- bursts: three times a day on average one group gets four times its traffic
  for ten minutes, and once a day a heavy client (one user id) sends
  2 requests/s for five minutes.

Shift runs: after a warm-up, one group's base refusal rate rises from 5% to
20% (and, in separate runs, to 10%); the delay is the time from the shift to
the first alert of the fairness SLO. Null run: `--weeks` of the same traffic
with equal base rates (5%), a daily load swing (0.3x..1.7x) and, half-way, a
model change that moves every group alike (refusals 5% -> 8%, warmer, longer,
faster answers); every alert is a false page. Before each run the SLO engine
is given three days of good slices, as a sidecar that has been running would.

    python bench/bias_drift.py                       # 20 seeds per shift, one null week
    python bench/bias_drift.py --option 'units=[]'   # the same, every exchange counted as independent
    python bench/bias_drift.py --objective 99 --slice 1m --tiers ticket   # another fairness SLO
    python bench/bias_drift.py --cost                # the detector core's cost with and without units
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import binom

from detectors.bias.detector import BiasDetector
from detectors.bias.groups import GroupValue
from detectors.bias.outcomes import Outcomes
from genai_sre.detection.base import DetectorContext
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import SLOFile, load_slos

GROUPS = ("a", "b", "c", "d")
DAY_S = 86400.0
ROOT = Path(__file__).resolve().parents[1]
OPTIONS: dict[str, Any] = {}


@dataclass(frozen=True)
class Traffic:
    """How users behave (the same in every group)."""

    rate: float = 1.0  # first-attempt requests per second per group, before swings and bursts
    session_mean: float = 4.0  # requests per session
    think_s: float = 30.0  # mean time between a session's requests
    user_share: float = 0.5  # sessions that send a user id
    propensity_shape: float = 2.0  # gamma shape of a session's refusal multiplier (mean 1, variance 1/shape)
    retry_refused: float = 0.6  # probability that a retry of a refused prompt is refused again
    retry_s: float = 5.0  # mean delay of a retry
    bursts_per_day: float = 3.0  # one group at 4x traffic for 10 minutes
    heavy_per_day: float = 1.0  # one client at 2 requests/s for 5 minutes
    daily_swing: float = 0.0  # amplitude of the daily load swing (0.7: 0.3x..1.7x)


@dataclass(frozen=True)
class World:
    """Outcome model of the simulated upstream at a point in time."""

    refusal: dict[str, float]
    sentiment_mu: float = 0.35
    length_mu: float = math.log(120)
    latency_mu: float = math.log(1.5)


Event = tuple[float, str, str | None, str, Outcomes]  # time, group, user id, prompt id, outcomes


def unit_for(user: str | None, prompt: str, units: Sequence[str]) -> str | None:
    """The unit the detector's `unit_key()` would give this exchange with the `units` option."""
    for source in units:
        if source == "user" and user is not None:
            return f"u:{user}"
        if source == "prompt":
            return f"p:{prompt}"
    return None


class Generator:
    """Exchanges (time, group, user id, prompt id, outcomes) in time order."""

    def __init__(self, rng: np.random.Generator, traffic: Traffic, world: Callable[[float], World],
                 start: float, end: float) -> None:
        self.rng = rng
        self.traffic = traffic
        self.world = world
        self.start = start
        self.end = end
        self._heap: list[tuple[float, int, str, str | None, str, Outcomes]] = []
        self._seq = 0
        self.sessions = 0
        self.exchanges = 0
        self.retries = 0
        self.with_user = 0
        self._bursts: list[tuple[float, float, str]] = []
        self._heavy: list[tuple[float, str]] = []
        days = (end - start) / DAY_S
        for _ in range(int(rng.poisson(traffic.bursts_per_day * days))):
            self._bursts.append((start + rng.random() * (end - start), 600.0, str(rng.choice(GROUPS))))
        for _ in range(int(rng.poisson(traffic.heavy_per_day * days))):
            self._heavy.append((start + rng.random() * (end - start), str(rng.choice(GROUPS))))
        self._heavy.sort()

    def load(self, t: float, group: str) -> float:
        tr = self.traffic
        swing = 1.0 + tr.daily_swing * math.sin(2 * math.pi * (t - self.start) / DAY_S)
        burst = 4.0 if any(b <= t < b + d and g == group for b, d, g in self._bursts) else 1.0
        return tr.rate * swing * burst

    def _outcome(self, refused: bool, w: World) -> Outcomes:
        rng = self.rng
        sentiment = float(np.clip(rng.normal(w.sentiment_mu, 0.3), -1, 1))
        length = float(rng.lognormal(w.length_mu, 0.5))
        latency = float(rng.lognormal(w.latency_mu, 0.4))
        if refused:
            return Outcomes(True, float(np.clip(sentiment - 0.5, -1, 1)), int(length / 6) + 5, latency / 3)
        return Outcomes(False, sentiment, int(length), latency)

    def _push(self, t: float, group: str, user: str | None, prompt: str, out: Outcomes) -> None:
        if t < self.end:
            self._seq += 1
            heapq.heappush(self._heap, (t, self._seq, group, user, prompt, out))

    def _request(self, t: float, group: str, user: str | None, propensity: float) -> None:
        """One request (a prompt of its own) and its retries of the same prompt."""
        rng, tr = self.rng, self.traffic
        self._seq += 1
        prompt = str(self._seq)
        p = min(0.95, self.world(t).refusal[group] * propensity)
        refused = bool(rng.random() < p)
        self._push(t, group, user, prompt, self._outcome(refused, self.world(t)))
        if refused:
            at = t
            for _ in range(int(rng.integers(0, 3))):
                at += float(rng.exponential(tr.retry_s)) + 1.0
                again = bool(rng.random() < tr.retry_refused)
                self._push(at, group, user, prompt, self._outcome(again, self.world(at)))
                self.retries += 1
                if not again:
                    break

    def _session(self, t: float, group: str) -> None:
        rng, tr = self.rng, self.traffic
        self.sessions += 1
        user = f"{group}{self.sessions}" if rng.random() < tr.user_share else None
        self.with_user += user is not None
        propensity = float(rng.gamma(tr.propensity_shape, 1.0 / tr.propensity_shape))
        n = int(rng.geometric(1.0 / tr.session_mean)) if tr.session_mean > 1 else 1
        at = t
        for _ in range(n):
            self._request(at, group, user, propensity)
            at += float(rng.exponential(tr.think_s))

    def _heavy_client(self, t: float, group: str) -> None:
        self.sessions += 1
        user = f"heavy{self.sessions}"
        propensity = float(self.rng.gamma(self.traffic.propensity_shape, 1.0 / self.traffic.propensity_shape))
        for at in t + np.cumsum(self.rng.exponential(0.5, 600)):
            self._request(float(at), group, user, propensity)

    def __iter__(self) -> Iterator[Event]:
        step = 60.0
        t = self.start
        heavy = list(self._heavy)
        while t < self.end or self._heap:
            if t < self.end:
                while heavy and heavy[0][0] < t + step:
                    self._heavy_client(*heavy.pop(0))
                for g in GROUPS:
                    sessions = self.rng.poisson(self.load(t, g) * step / self.traffic.session_mean)
                    for at in t + self.rng.random(sessions) * step:
                        self._session(float(at), g)
                t += step
            horizon = t if t < self.end else math.inf
            while self._heap and self._heap[0][0] < horizon:
                at, _, group, user, prompt, out = heapq.heappop(self._heap)
                self.exchanges += 1
                yield at, group, user, prompt, out


def fairness_slos(
    path: Path, objective: float | None = None, slice_: str | None = None, tiers: str | None = None
) -> SLOFile:
    """The SLO file reduced to its fairness SLO (catalog, min_events and all), optionally changed."""
    slos = load_slos(path)
    spec = slos.get("fairness")
    if objective is not None:
        spec = dataclasses.replace(spec, objective=objective)
    if slice_ is not None:
        spec = dataclasses.replace(spec, sli=dataclasses.replace(spec.sli, slice=slice_))
    if tiers is not None:
        wanted = set(tiers.split("+"))
        alerting = spec.alerting
        spec = dataclasses.replace(spec, alerting=dataclasses.replace(
            alerting, page=dataclasses.replace(alerting.page, enabled="page" in wanted),
            ticket=dataclasses.replace(alerting.ticket, enabled="ticket" in wanted)))
    return dataclasses.replace(slos, slos=(spec,))


def engine_for(slos: SLOFile, start: float) -> SLOEngine:
    engine = SLOEngine(slos, clock=lambda: start)
    width = slos.slos[0].sli.slice_s
    k = int(3 * DAY_S // width)  # three days of clean history, as a sidecar that has been running would have
    for i in range(k):
        engine.record("fairness", True, at=start - (k - i) * width + width / 2)
    return engine


@dataclass
class Run:
    alerts: list[tuple[float, str]]
    bad_slices: int
    slices: int
    first_flag: float
    generator: Generator
    detector_s: float  # time spent in the detector's observe() and findings()


def replay(seed: int, slos: SLOFile, traffic: Traffic, world: Callable[[float], World], start: float, end: float,
           flag_after: float = math.inf) -> Run:
    """Alerts (start time, severity), bad slices, and the first failing finding at or after `flag_after`."""
    rng = np.random.default_rng(seed)
    now = [start]
    detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda: now[0]), **OPTIONS)
    engine = engine_for(slos, start)
    width = slos.slos[0].sli.slice_s
    threshold = slos.slos[0].sli.threshold
    alerts: list[tuple[float, str]] = []
    slice_end = start + width
    slice_max: float | None = None
    bad = slices = 0
    first_flag = math.inf

    def close_slices(until: float) -> None:
        nonlocal slice_end, slice_max, bad, slices
        while slice_end <= until:
            at = slice_end - 0.001
            if slice_max is not None:
                good = slice_max < threshold
                bad += 0 if good else 1
                slices += 1
                engine.record("fairness", good, at=at)
            for alert in engine.evaluate(at):
                if alert.status == "firing":
                    alerts.append((alert.starts_at, alert.labels.get("severity", "")))
            slice_max = None
            slice_end += width

    gen = Generator(rng, traffic, world, start, end)
    spent = 0.0
    units = detector.config.units
    for i, (t, g, user, prompt, outcomes) in enumerate(gen):
        close_slices(t)
        now[0] = t
        t1 = time.perf_counter()
        detector.observe(t, (GroupValue("group", g),), outcomes, f"x{i}", unit=unit_for(user, prompt, units))
        found = detector.findings(t)
        spent += time.perf_counter() - t1
        for f in found:
            if f.name == "fairness_disparity" and f.score is not None:
                slice_max = f.score if slice_max is None else max(slice_max, f.score)
                if f.score >= threshold and t >= flag_after and first_flag == math.inf:
                    first_flag = t
    close_slices(end)
    return Run(alerts, bad, slices, first_flag, gen, spent)


def shift_delays(high: float, seeds: int, slos: SLOFile, traffic: Traffic, warmup_s: float,
                 horizon_s: float) -> tuple[list[float], list[float]]:
    """Per seed: shift to first alert, and shift to the detector's first failing finding."""
    delays, flags = [], []
    for seed in range(seeds):
        start = 1_700_000_000.0 + seed * 7 * DAY_S
        t_shift = start + warmup_s

        def world(t: float, t_shift: float = t_shift) -> World:
            return World({g: (high if g == "d" and t >= t_shift else 0.05) for g in GROUPS})

        run = replay(seed, slos, traffic, world, start, t_shift + horizon_s, t_shift)
        after = [a - t_shift for a, _ in run.alerts if a >= t_shift]
        delays.append(after[0] if after else math.inf)
        flags.append(run.first_flag - t_shift)
    return delays, flags


def null_run(seed: int, weeks: float, slos: SLOFile, traffic: Traffic) -> Run:
    start = 1_800_000_000.0 + seed * 30 * DAY_S
    end = start + weeks * 7 * DAY_S
    change = start + (end - start) / 2

    def world(t: float) -> World:
        if t < change:
            return World({g: 0.05 for g in GROUPS})
        return World({g: 0.08 for g in GROUPS}, sentiment_mu=0.45, length_mu=math.log(160), latency_mu=math.log(1.1))

    return replay(seed, slos, dataclasses.replace(traffic, daily_swing=0.7), world, start, end)


def core_cost(n: int = 40_000) -> dict[str, float]:
    """Microseconds per exchange of the detector core with and without units, measured in one run."""
    out = {}
    for label, units in (("units", ["user", "prompt"]), ("no units", [])):
        now = [1_900_000_000.0]
        detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda now=now: now[0]), units=units)
        rng = np.random.default_rng(5)
        refused = rng.random(n) < 0.08
        users = rng.integers(0, 2000, n)
        start = time.perf_counter()
        for i in range(n):
            now[0] += 0.25
            g = GROUPS[i % 4]
            outcome = Outcomes(True, -0.2, 20, 0.5) if refused[i] else Outcomes(False, 0.4, 120, 1.5)
            detector.observe(now[0], (GroupValue("group", g),), outcome, f"x{i}",
                             unit=unit_for(f"{g}{users[i]}", str(i), units))
            detector.findings(now[0])
        out[label] = (time.perf_counter() - start) / n * 1e6
    return out


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics [X(r), X(n-r+1)] with
    1 - 2 P(B <= r-1) >= level, B ~ Binomial(n, 1/2) (the whole range when n is too small)."""
    xs = sorted(values)
    n = len(xs)
    k = int(binom.ppf((1 - level) / 2, n, 0.5))
    if binom.cdf(k, n, 0.5) > (1 - level) / 2:
        k -= 1  # the largest k with P(B <= k) <= (1 - level) / 2
    if k < 0:
        return xs[0], xs[-1]
    return xs[k], xs[n - 1 - k]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}" if math.isfinite(seconds) else "never"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slos", default=str(ROOT / "configs" / "slos.yaml"), help="the SLO file (fairness SLO)")
    parser.add_argument("--seeds", type=int, default=20, help="runs per shift")
    parser.add_argument("--weeks", type=float, default=1.0, help="length of the null run")
    parser.add_argument("--warmup-min", type=float, default=60.0)
    parser.add_argument("--horizon-min", type=float, default=90.0)
    parser.add_argument("--session-mean", type=float, default=Traffic.session_mean)
    parser.add_argument("--think-s", type=float, default=Traffic.think_s)
    parser.add_argument("--user-share", type=float, default=Traffic.user_share)
    parser.add_argument("--retry-refused", type=float, default=Traffic.retry_refused)
    parser.add_argument("--no-shifts", action="store_true", help="the null run only")
    parser.add_argument("--no-null", action="store_true", help="the shift runs only")
    parser.add_argument("--cost", action="store_true", help="only the detector core's cost per exchange")
    parser.add_argument("--objective", type=float, help="change the fairness SLO's objective (percent)")
    parser.add_argument("--slice", help="change the fairness SLO's slice, e.g. 1m")
    parser.add_argument("--tiers", choices=["page+ticket", "page", "ticket"], help="change the alerting tiers")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=YAML",
                        help="a bias detector option, e.g. --option 'units=[]' --option alpha=1e-3")
    args = parser.parse_args(argv)
    for item in args.option:
        key, _, value = item.partition("=")
        OPTIONS[key] = yaml.safe_load(value)
    slos = fairness_slos(Path(args.slos), args.objective, args.slice, args.tiers)
    spec = slos.slos[0]
    tiers = "+".join(s for s in ("page", "ticket") if getattr(spec.alerting, s).enabled) or "none"
    traffic = Traffic(session_mean=args.session_mean, think_s=args.think_s, user_share=args.user_share,
                      retry_refused=args.retry_refused)
    print(f"# machine: {platform.machine()} {platform.system()} python {platform.python_version()} "
          f"cpus={os.cpu_count()}; detector options {OPTIONS or 'defaults'}")
    changed = " (changed by the command line)" if (args.objective, args.slice, args.tiers) != (None, None, None) else ""
    shown = Path(args.slos).resolve()
    shown_text = str(shown.relative_to(ROOT)) if shown.is_relative_to(ROOT) else str(shown)
    print(f"# SLO {shown_text}{changed}: fairness objective {spec.objective}%, slice {spec.sli.slice}, "
          f"min_events {slos.min_events_for(spec)}, tiers {tiers}")
    print(f"# traffic: {traffic}")
    t0 = time.perf_counter()
    if args.cost:
        cost = core_cost()
        print(f"detector core (observe + findings): {cost['units']:.0f} us per exchange with units, "
              f"{cost['no units']:.0f} us without (units: []), ratio {cost['units'] / cost['no units']:.2f}")
        return 0
    if not args.no_shifts:
        for label, high in (("5->20%", 0.20), ("5->10%", 0.10)):
            delays, flags = shift_delays(high, args.seeds, slos, traffic, args.warmup_min * 60,
                                         args.horizon_min * 60)
            lo, hi = median_ci(delays)
            missed = sum(1 for d in delays if not math.isfinite(d))
            print(f"median detection delay {label}: {_minutes(statistics.median(delays))} min "
                  f"(95% CI {_minutes(lo)}-{_minutes(hi)}; worst {_minutes(max(delays))}; {args.seeds} seeds)")
            flo, fhi = median_ci(flags)
            print(f"# {label}: detector's first failing finding after the shift: median "
                  f"{_minutes(statistics.median(flags))} min (95% CI {_minutes(flo)}-{_minutes(fhi)})")
            if missed:
                print(f"# {label}: {missed} of {len(delays)} runs not alerted within {args.horizon_min:g} min")
            sys.stdout.flush()
    if args.no_null:
        return 0
    run = null_run(1000, args.weeks, slos, traffic)
    gen = run.generator
    pages = sum(1 for _, sev in run.alerts if sev == "page")
    upper = 3.0 / args.weeks if not run.alerts else float("nan")
    print(f"false pages in the null week with retries: {pages} (all alerts: {len(run.alerts)}; "
          f"{args.weeks:g} simulated week(s); 95% upper bound {upper:.1f} per week)" if not run.alerts else
          f"false pages in the null week with retries: {pages} (all alerts: {len(run.alerts)} at "
          f"{', '.join(f'{(a - gen.start) / 3600:.1f} h {s}' for a, s in run.alerts)})")
    print(f"# null run: {gen.exchanges} exchanges ({gen.retries} retries, {gen.with_user} sessions with a user id of "
          f"{gen.sessions}), bad slices {run.bad_slices} of {run.slices} ({run.bad_slices / max(run.slices, 1):.3%})")
    print(f"# detector core (observe + findings): {run.detector_s / max(gen.exchanges, 1) * 1e6:.0f} us per exchange; "
          f"wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
