#!/usr/bin/env python3
"""Fail-over under a primary outage: what clients see with and without `fallback`.

Runs on loopback: two simulated upstreams (`genai-sre mock-upstream`, one process each: `primary` and
`backup`), the sidecar (`genai-sre serve --workers N`: the supervisor, N proxy workers and the agent) in
front of them, and an open-loop client at a fixed rate, half of the requests streaming. The primary is
healthy for --warmup-s, then fails for --outage-s (`--kind 503`: it answers every request 503;
`--kind refused`: its process is killed, connections are refused), then is healthy again for --recovery-s.

The same run is made twice, without `fallback` and with it (trip_after_failures 5, probe_interval_s 5,
recover_after_successes 3), and prints for each:

* client-visible error share over the outage window and over the whole run, with 95% Wilson intervals;
* failed requests in the outage window, against the bound trip_after_failures x workers;
* time to fail over and to fail back (the sidecar's `mitigation` annotations, GET /admin/annotations);
* requests the sidecar sent to the primary while it was down (from its genai_sre_requests_total),
  of them the mirrored half-open probes.

Usage: `python bench/failover.py [--rate 20] [--outage-s 120] [--workers 2] [--kind 503|refused]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-admin-token"
SCENARIO = """\
name: bench-primary
seed: 3
phases:
  - {name: healthy, duration_s: 86400, ttft_s: {median: 0.03, p99: 0.1}, tokens_per_s: 400}
  - {name: down, duration_s: 86400, ttft_s: {median: 0.01, p99: 0.02}, error_rate: 1.0, error_status: 503}
"""
BODY = {
    "model": "bench",
    "messages": [
        {"role": "system", "content": "Answer from the documents. The Eiffel Tower is 330 metres tall."},
        {"role": "user", "content": "How tall is the Eiffel Tower?"},
    ],
}
FALLBACK = {"upstream": "backup", "trip_after_failures": 5, "probe_interval_s": 5, "recover_after_successes": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def wait_http(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s:.0f} s")


class Mock:
    """A `genai-sre mock-upstream` process on a fixed port (so it can be killed and started again)."""

    def __init__(self, port: int, scenario: Path | None) -> None:
        self.port = port
        self.scenario = scenario
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "genai_sre", "mock-upstream", "--port", str(self.port)]
        if self.scenario is not None:
            cmd += ["--scenario", str(self.scenario), "--phase", "healthy"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.url}/health", 30)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def phase(self, name: str) -> None:
        httpx.post(f"{self.url}/_mock/phase", json={"name": name}, timeout=5).raise_for_status()


@dataclass
class Run:
    label: str
    sent: list[tuple[float, bool]] = field(default_factory=list)  # (seconds since start, ok)
    outage: tuple[float, float] = (0.0, 0.0)  # wall clock
    start_wall: float = 0.0
    to_primary: float = 0.0
    probes: float = 0.0
    reached_primary: int | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)


def primary_requests(admin: str) -> tuple[float, float]:
    """From the sidecar's /metrics: (client requests that `primary` failed, probes sent to `primary`).

    Counting only failures makes the count insensitive to the healthy requests just before the outage
    (counters reach /metrics up to a quarter of a second late).
    """
    text = httpx.get(f"{admin}/metrics", timeout=10).text
    failed = probes = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "genai_sre_requests":
            continue
        for s in family.samples:
            if not s.name.endswith("_total") or s.labels.get("upstream") != "primary":
                continue
            if s.labels.get("tenant") == "genai-sre":
                probes += s.value
            elif s.labels.get("status_class") != "2xx":
                failed += s.value
    return failed, probes


async def drive(proxy: str, rate: float, seconds: float, run: Run, t0: float) -> None:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            stream = i % 2 == 1
            at = time.monotonic() - t0
            ok = False
            try:
                if stream:
                    async with client.stream("POST", f"{proxy}/v1/chat/completions",
                                             json={**BODY, "stream": True}) as r:
                        data = b"".join([c async for c in r.aiter_bytes()])
                        ok = r.status_code == 200 and b"[DONE]" in data
                else:
                    r = await client.post(f"{proxy}/v1/chat/completions", json=BODY)
                    ok = r.status_code == 200 and bool(r.json().get("choices"))
            except (httpx.HTTPError, ValueError):
                ok = False
            run.sent.append((at, ok))

        tasks = []
        n = int(seconds * rate)
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)


def one_run(args: argparse.Namespace, with_fallback: bool, tmp: Path) -> Run:
    run = Run("with fallback" if with_fallback else "without fallback")
    scenario = tmp / "primary.yaml"
    scenario.write_text(SCENARIO)
    primary, backup = Mock(free_port(), scenario), Mock(free_port(), None)
    primary.start()
    backup.start()
    proxy_port, admin_port = free_port(), free_port()
    data = tmp / ("data-fb" if with_fallback else "data")
    up: dict[str, Any] = {"name": "primary", "url": primary.url, "connect_timeout_s": 1, "read_timeout_s": 10}
    if with_fallback:
        up["fallback"] = FALLBACK
    config = {
        "version": "genai-sre/v1",
        "upstreams": [up, {"name": "backup", "url": backup.url, "connect_timeout_s": 1, "read_timeout_s": 10}],
        "storage": {"data_dir": str(data)},
        "slo": {"file": str(ROOT / "configs" / "slos.yaml")},
        "alerting": {"file": None},
        "logging": {"level": "ERROR"},
    }
    cfg = tmp / ("sidecar-fb.yaml" if with_fallback else "sidecar.yaml")
    cfg.write_text(json.dumps(config))  # JSON is YAML
    env = {**os.environ, "GENAI_SRE_ADMIN_TOKEN": TOKEN}
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg), "--port", str(proxy_port),
         "--admin-port", str(admin_port), "--workers", str(args.workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    admin = f"http://127.0.0.1:{admin_port}"
    proxy = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_http(f"{admin}/readyz")
        total = args.warmup_s + args.outage_s + args.recovery_s

        async def main() -> None:
            loop = asyncio.get_running_loop()
            t0 = time.monotonic()
            run.start_wall = time.time()
            traffic = asyncio.create_task(drive(proxy, args.rate, total, run, t0))
            await asyncio.sleep(args.warmup_s)
            before, before_probes = await loop.run_in_executor(None, primary_requests, admin)
            reached = 0
            if args.kind != "refused":
                state = await loop.run_in_executor(None, lambda: httpx.get(f"{primary.url}/_mock/state").json())
                reached = int(state["requests"])
            outage_start = time.time()
            if args.kind == "refused":
                await loop.run_in_executor(None, primary.kill)
            else:
                await loop.run_in_executor(None, primary.phase, "down")
            await asyncio.sleep(args.outage_s)
            after, after_probes = await loop.run_in_executor(None, primary_requests, admin)
            if args.kind == "refused":
                await loop.run_in_executor(None, primary.start)
            else:
                state = await loop.run_in_executor(None, lambda: httpx.get(f"{primary.url}/_mock/state").json())
                run.reached_primary = int(state["requests"]) - reached
                await loop.run_in_executor(None, primary.phase, "healthy")
            run.outage = (outage_start, time.time())
            run.probes = after_probes - before_probes
            run.to_primary = after - before + run.probes
            await traffic
            await asyncio.sleep(1.0)

        asyncio.run(main())
        r = httpx.get(f"{admin}/admin/annotations?kind=mitigation", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10)
        r.raise_for_status()
        run.annotations = r.json()["annotations"]
    finally:
        sidecar.send_signal(signal.SIGTERM)
        try:
            sidecar.wait(60)
        except subprocess.TimeoutExpired:
            sidecar.kill()
        primary.kill()
        backup.kill()
    return run


def report(run: Run, args: argparse.Namespace) -> list[str]:
    start, end = (t - run.start_wall for t in run.outage)
    in_outage = [ok for at, ok in run.sent if start <= at < end]
    bad_out = sum(not ok for ok in in_outage)
    bad_all = sum(not ok for _, ok in run.sent)
    lo, hi = wilson(bad_out, len(in_outage))
    alo, ahi = wilson(bad_all, len(run.sent))
    lines = [
        f"{run.label}:",
        f"  requests {len(run.sent)}; in the outage window {len(in_outage)}, failed {bad_out} "
        f"({100 * bad_out / max(1, len(in_outage)):.2f}%, 95% CI {100 * lo:.2f}-{100 * hi:.2f}%)",
        f"  whole run: failed {bad_all} ({100 * bad_all / max(1, len(run.sent)):.2f}%, "
        f"95% CI {100 * alo:.2f}-{100 * ahi:.2f}%)",
        f"  requests sent to the primary while it was down: {run.to_primary:.0f} "
        f"(of them half-open probes: {run.probes:.0f})"
        + (f"; arrived at the primary: {run.reached_primary}" if run.reached_primary is not None else ""),
    ]
    fo = [a for a in run.annotations if a["labels"].get("action") == "failover"]
    fb = [a for a in run.annotations if a["labels"].get("action") == "failback"]
    if fo:
        lines.append(
            f"  time to fail over: {fo[0]['at'] - run.outage[0]:.2f} s after the outage began; failed requests "
            f"in the window {bad_out} (trip_after_failures {FALLBACK['trip_after_failures']}: the first worker's "
            f"breaker opens at its {FALLBACK['trip_after_failures']}th consecutive failure and the agent moves "
            f"all {args.workers} workers; requests already in flight may add to it)"
        )
    if fb:
        lines.append(f"  time to fail back: {fb[-1]['at'] - run.outage[1]:.2f} s after the primary recovered")
    if run.annotations:
        lines.append(f"  mitigation annotations: {len(run.annotations)} "
                     f"({', '.join(a['labels'].get('action', '?') for a in run.annotations)})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    ap.add_argument("--warmup-s", type=float, default=20.0)
    ap.add_argument("--outage-s", type=float, default=120.0)
    ap.add_argument("--recovery-s", type=float, default=40.0)
    ap.add_argument("--workers", type=int, default=2, help="proxy worker processes (default 2)")
    ap.add_argument("--kind", choices=("503", "refused"), default="503")
    ap.add_argument("--only", choices=("with", "without"), help="run one side only")
    args = ap.parse_args()
    print(
        f"# bench/failover.py --rate {args.rate:g} --warmup-s {args.warmup_s:g} --outage-s {args.outage_s:g} "
        f"--recovery-s {args.recovery_s:g} --workers {args.workers} --kind {args.kind}"
    )
    print(f"# {platform.platform()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="genai-sre-failover-") as tmp:
        for with_fallback in (False, True):
            if args.only == ("without" if with_fallback else "with"):
                continue
            run = one_run(args, with_fallback, Path(tmp))
            print("\n".join(report(run, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
