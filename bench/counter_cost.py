#!/usr/bin/env python3
"""What one request's counter updates cost in a proxy worker: the plain cumulative counters the
worker keeps (`genai_sre.proxy.stats`) against prometheus_client, in-process and in its
multiprocess mode (values in an mmap'ed file per process), measured in one run.

Per simulated request: two counter increments and one histogram observation, with the label sets
the proxy uses. Prints microseconds per request (median of 7 repeats) and the ratios.

Usage: `python bench/counter_cost.py [--requests 50000]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
KEY = ("/v1/chat/completions", "openai", "gpt-4o", "2xx", "", "")


def per_request(fn: Callable[[int], None], n: int, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(times)


def plain(n: int) -> None:
    from genai_sre.proxy.stats import Histogram

    counters: dict[str, dict[tuple[str, ...], int]] = {"a": {}, "b": {}}
    hist: dict[tuple[str, ...], Histogram] = {}
    for i in range(n):
        c = counters["a"]
        c[KEY] = c.get(KEY, 0) + 1
        c = counters["b"]
        c[KEY[:3]] = c.get(KEY[:3], 0) + 1
        h = hist.get(KEY)
        if h is None:
            h = hist[KEY] = Histogram(BOUNDS)
        h.observe(0.01 * (i % 50))


def prometheus(n: int) -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    reg = CollectorRegistry()
    a = Counter("a", "a", ["route", "provider", "model", "status_class", "tenant", "app"], registry=reg)
    b = Counter("b", "b", ["route", "provider", "model"], registry=reg)
    h = Histogram("h", "h", ["route", "provider", "model", "status_class", "tenant", "app"], buckets=BOUNDS,
                  registry=reg)
    for i in range(n):
        a.labels(*KEY).inc()
        b.labels(*KEY[:3]).inc()
        h.labels(*KEY).observe(0.01 * (i % 50))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50_000)
    n = ap.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp:
        results = {"plain counters (genai_sre.proxy.stats)": per_request(plain, n)}
        results["prometheus_client, in-process"] = per_request(prometheus, n)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp  # read when the value class is chosen, below
        import importlib

        import prometheus_client.values

        importlib.reload(prometheus_client.values)
        import prometheus_client.metrics

        importlib.reload(prometheus_client.metrics)
        results["prometheus_client, multiprocess mode"] = per_request(prometheus, n)
        files = list(Path(tmp).glob("*.db"))
        assert files, "multiprocess mode wrote no value files"
    base = results["plain counters (genai_sre.proxy.stats)"]
    for name, us in results.items():
        print(f"{name}: {us:.2f} us per request (ratio {us / base:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
