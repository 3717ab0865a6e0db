#!/usr/bin/env python3
"""Incident store throughput: webhook intake and incident listing, SQLite and PostgreSQL, one and two primaries.

Each primary is a process serving the admin API (the same handlers as `genai-sre serve`) on
loopback. PostgreSQL is a throw-away cluster started like the tests start theirs (`tests/pg.py`:
Debian's `postgresql`, `initdb` + `pg_ctl`), with `fsync` on; SQLite runs in WAL mode with
`synchronous=FULL`, as the sidecar does. The client (aiohttp, `--concurrency` requests in
flight) posts Alertmanager webhooks, each for a new group, so each opens an incident (the
heaviest write: incident, alert, three timeline events, receipt, one transaction), spread
round-robin over the primaries; then it lists incidents (`GET /admin/incidents?limit=100`).

Prints requests/s and p50/p99 latency per case, measured in one run. Client and servers share
the machine's cores: compare the rows with each other, not with another machine.

Usage: `python bench/incident_store.py [--requests 2000] [--concurrency 16]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def serve(data_dir: str, port: int, url: str) -> None:
    """One primary: the admin API on the incident store `url` ("" = SQLite in data_dir)."""
    from aiohttp import web

    from genai_sre.incidents.api import AdminAuth, admin_routes
    from genai_sre.incidents.service import IncidentService
    from genai_sre.incidents.store import open_store

    service = IncidentService(open_store(url, data_dir))
    app = web.Application()
    app.add_routes(admin_routes(service, None, AdminAuth(TOKEN)))
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True), access_log=None)


def webhook(n: int, tag: str) -> dict[str, Any]:
    labels = {"alertname": "SLOBurnRate", "slo": f"{tag}-{n}", "severity": "page"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{slo="{tag}-{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "genai-sre",
        "groupLabels": {"slo": f"{tag}-{n}"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"burn {n}", "burn_rate": "14.4"},
                "startsAt": "2026-11-26T04:36:13.5Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": f"fp{n}",
            }
        ],
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data_dir), str(port), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("a primary did not start")
    return proc, f"http://127.0.0.1:{port}"


async def load(
    bases: list[str], requests: int, concurrency: int, make: Any, method: str = "POST", path: str = ""
) -> tuple[float, list[float], int]:
    import aiohttp

    counter = iter(range(requests))
    latencies: list[float] = []
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for n in counter:
            base = bases[n % len(bases)]
            t = time.perf_counter()
            async with session.request(method, base + path, json=make(n), headers=HEADERS) as r:
                await r.read()
                if r.status >= 300:
                    errors += 1
            latencies.append(time.perf_counter() - t)

    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return elapsed, latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_case(name: str, primaries: int, url: str, data: Path, args: argparse.Namespace) -> list[str]:
    procs = [start(data / f"p{i}", url) if url else start(data, url) for i in range(primaries)]
    bases = [b for _, b in procs]
    rows = []
    try:
        asyncio.run(load(bases, 50, 4, lambda n: webhook(n, f"warm-{name}"), path="/admin/alertmanager"))
        elapsed, lat, errors = asyncio.run(
            load(bases, args.requests, args.concurrency, lambda n: webhook(n, name), path="/admin/alertmanager")
        )
        rows.append(
            f"| {name} | webhook intake (new incident each) | {len(lat) / elapsed:.0f} | "
            f"{statistics.median(lat) * 1000:.1f} | {pct(lat, 0.99) * 1000:.1f} | {errors} |"
        )
        elapsed, lat, errors = asyncio.run(
            load(bases, args.requests, args.concurrency, lambda n: None, "GET", "/admin/incidents?limit=100")
        )
        rows.append(
            f"| {name} | list 100 incidents | {len(lat) / elapsed:.0f} | "
            f"{statistics.median(lat) * 1000:.1f} | {pct(lat, 0.99) * 1000:.1f} | {errors} |"
        )
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--serve", nargs=3, metavar=("DATA_DIR", "PORT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return

    from tests.pg import postgres_server

    rows: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="genai-sre-bench-"))
    try:
        rows += run_case("SQLite, 1 primary", 1, "", root / "sqlite1", args)
        rows += run_case("SQLite, 2 primaries (one file)", 2, "", root / "sqlite2", args)
        with postgres_server(fsync=True) as pg:
            rows += run_case("PostgreSQL, 1 primary", 1, pg.create_database("bench1"), root / "pg1", args)
            rows += run_case("PostgreSQL, 2 primaries", 2, pg.create_database("bench2"), root / "pg2", args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"# incident store: {args.requests} requests per row, {args.concurrency} in flight, "
        f"{os.cpu_count()} CPUs, {platform.python_version()}, PostgreSQL fsync on, SQLite synchronous=FULL"
    )
    print("| store | operation | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
