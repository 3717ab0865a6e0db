#!/usr/bin/env python3
"""Soak: one sidecar under mixed traffic for an hour; does memory, file descriptors or latency drift?

Runs, on loopback: a local upstream (its own process) that answers as each request asks (`x-soak`
header: a JSON answer, an SSE stream, a slow stream, a 2 MiB body, a 500, or a stream it cuts
mid-way); `genai-sre serve` (supervisor, proxy worker, agent) with the latency and hallucination
detectors plus one that fails on a share of exchanges; and a client sending about `--rate`
requests/s, some of them streaming, some with large bodies, some that disconnect early.

Every `--every` seconds it prints: resident memory (sum over the sidecar's processes, and the proxy
worker's alone), open file descriptors, p50/p99 latency of the plain JSON answers of the interval,
captures dropped (proxy and pipeline), and client-visible errors the upstream did not cause. At
the end: figures at start, after the warm-up and at the end, and the growth per hour after the
warm-up (least squares).

Targets: after a 5-minute warm-up, resident memory grows less than 5 % over the hour, file
descriptors stay flat, and no client error is not caused by the upstream.

Usage: `python bench/soak.py [--minutes 60] [--rate 200] [--every 60] [--warmup 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

HERE = Path(__file__).resolve().parent

UPSTREAM = r"""
import asyncio, json, sys
from aiohttp import web
ANSWER = {"id": "chatcmpl-s", "object": "chat.completion", "created": 0, "model": "soak",
  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
  "content": "The Eiffel Tower is 330 metres tall and was finished in 1889."}}],
  "usage": {"prompt_tokens": 40, "completion_tokens": 14, "total_tokens": 54}}
BIG = json.dumps({**ANSWER, "padding": "x" * (2 << 20)}).encode()
def chunk(text, finish=None):
    d = {"content": text} if text is not None else {}
    return ("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "soak",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}) + "\n\n").encode()
WORDS = "The Eiffel Tower is 330 metres tall and was finished in 1889 .".split()
async def handler(request):
    await request.read()
    mode = request.headers.get("x-soak", "ok")
    if mode == "error":
        return web.json_response({"error": {"message": "overloaded", "code": "server_error"}}, status=500)
    if mode == "big":
        return web.Response(body=BIG, content_type="application/json")
    if mode in ("stream", "slow", "cut"):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        gap = 0.05 if mode == "slow" else 0.002
        for i, w in enumerate(WORDS):
            if mode == "cut" and i == 5:
                request.transport.abort()
                return resp
            await resp.write(chunk((" " if i else "") + w))
            await asyncio.sleep(gap)
        await resp.write(chunk(None, "stop") + b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
    return web.json_response(ANSWER)
import logging
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
async def main():
    server = web.Server(handler, access_log=None)
    await asyncio.get_running_loop().create_server(server, "127.0.0.1", int(sys.argv[1]), backlog=2048)
    await asyncio.Event().wait()
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
asyncio.run(main())
"""

# (mode, weight, streaming request, expected by the client)
MIX = [
    ("ok", 55, False),
    ("stream", 20, True),
    ("slow", 5, True),
    ("big", 3, False),
    ("error", 5, False),
    ("cut", 2, True),
    ("disconnect", 5, True),  # a slow stream the client abandons after 100 ms
    ("large-request", 5, False),  # a 512 KiB request body
]
CONTEXT = "The Eiffel Tower in Paris is 330 metres tall. It was finished in 1889 for the World's Fair."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(admin: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=5).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the sidecar never became ready")


@dataclass
class Interval:
    latencies: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    sent: int = 0


@dataclass
class Sample:
    t: float
    rss: int
    rss_proxy: int
    fds: int
    p50: float
    p99: float
    sent: int
    dropped_proxy: float
    dropped_pipeline: float
    unexpected: int


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def measure(pid: int) -> tuple[int, int, int]:
    rss = rss_proxy = fds = 0
    for p in process_tree(pid):
        try:
            mem = p.memory_info().rss
            rss += mem
            fds += p.num_fds()
            if "--role proxy" in " ".join(p.cmdline()):
                rss_proxy += mem
        except psutil.Error:
            pass
    return rss, rss_proxy, fds


def metric(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([\d.e+]+)$", text, re.M))


async def one(session: aiohttp.ClientSession, url: str, mode: str, stream: bool, interval: Interval) -> None:
    messages = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "How tall is the tower?"}]
    body: dict[str, object] = {"model": "soak", "messages": messages, "stream": stream}
    header = {"disconnect": "slow", "large-request": "ok"}.get(mode, mode)
    if mode == "large-request":
        body["metadata"] = {"blob": "y" * (512 << 10)}
    t0 = time.perf_counter()
    try:
        async with session.post(url, json=body, headers={"x-soak": header}) as resp:
            if mode == "disconnect":
                await asyncio.sleep(0.1)
                resp.close()  # the client goes away mid-stream
                return
            await resp.read()
            status = resp.status
        if mode == "error":
            return  # the upstream's 500 (or its cut) is the upstream's
        if status != 200:
            interval.unexpected.append(f"{mode}: HTTP {status}")
    except (TimeoutError, aiohttp.ClientError) as exc:
        if mode not in ("cut", "disconnect", "error"):
            interval.unexpected.append(f"{mode}: {type(exc).__name__}")
        return
    if mode == "ok":  # latency of plain answers (streams and large bodies take as long as they take)
        interval.latencies.append(time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600


async def drive(args: argparse.Namespace, proxy: int, admin: int, pid: int) -> list[Sample]:
    url = f"http://127.0.0.1:{proxy}/v1/chat/completions"
    weights = [w for _, w, _ in MIX]
    rng = random.Random(7)
    samples: list[Sample] = []
    start = time.monotonic()
    end = start + args.minutes * 60
    interval = Interval()
    next_sample = start
    tasks: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256)) as session:
        i = 0
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=30).read().decode()
                rss, rss_proxy, fds = measure(pid)
                samples.append(Sample(
                    now - start, rss, rss_proxy, fds, pct(interval.latencies, 0.5), pct(interval.latencies, 0.99),
                    interval.sent, metric(text, "genai_sre_proxy_captures_dropped_total"),
                    metric(text, "genai_sre_pipeline_dropped_total"), len(interval.unexpected),
                ))
                s = samples[-1]
                print(
                    f"t={s.t / 60:5.1f} min  rss {s.rss / 2**20:6.1f} MiB (proxy {s.rss_proxy / 2**20:5.1f})  "
                    f"fds {s.fds:4d}  p50 {s.p50 * 1000:6.2f} ms  p99 {s.p99 * 1000:7.2f} ms  sent {s.sent:6d}  "
                    f"dropped proxy {s.dropped_proxy:.0f} pipeline {s.dropped_pipeline:.0f}  "
                    f"unexpected errors {s.unexpected}"
                    + (f" {interval.unexpected[:3]}" if interval.unexpected else ""),
                    flush=True,
                )
                interval = Interval()
                next_sample += args.every
            due = start + i / args.rate
            if now < due:
                await asyncio.sleep(min(due - now, 0.05))
                continue
            mode, _, stream = rng.choices(MIX, weights)[0]
            task = asyncio.create_task(one(session, url, mode, stream, interval))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            interval.sent += 1
            i += 1
        await asyncio.gather(*tasks, return_exceptions=True)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes before growth is measured")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genai-sre-soak-"))
    up_port, proxy, admin = free_port(), free_port(), free_port()
    cfg = work / "sidecar.yaml"
    cfg.write_text(
        f"""version: genai-sre/v1
proxy: {{host: 127.0.0.1, port: {proxy}, max_body_bytes: 4194304}}
admin: {{host: 127.0.0.1, port: {admin}}}
upstreams: [{{name: soak, url: "http://127.0.0.1:{up_port}", read_timeout_s: 30}}]
storage: {{data_dir: "{work / 'data'}", store_samples: true, sample_rate: 0.05}}
slo: {{file: null}}
alerting: {{file: null}}
logging: {{level: ERROR}}
detectors:
  - {{name: latency, type: latency}}
  - {{name: hallucination, type: hallucination}}
  - {{name: flaky, type: "soak_detectors:FlakyDetector", options: {{failure_rate: 0.05}}}}
"""
    )
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(HERE)}
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)], env=env, cwd=work,
        stdout=subprocess.DEVNULL, stderr=open(work / "sidecar.log", "w"),
    )
    try:
        wait_ready(admin)
        print(f"soak: {args.minutes:.0f} min at {args.rate:.0f} req/s, sample every {args.every:.0f} s "
              f"(mix: {', '.join(f'{m} {w}%' for m, w, _ in MIX)})", flush=True)
        samples = asyncio.run(drive(args, proxy, admin, sidecar.pid))
    finally:
        sidecar.terminate()
        sidecar.wait(60)
        upstream.terminate()
        upstream.wait(10)
    warm = [s for s in samples if s.t >= args.warmup * 60] or samples[-1:]
    first, after, last = samples[0], warm[0], samples[-1]
    rss_slope = slope_per_hour([(s.t, s.rss) for s in warm])
    fd_slope = slope_per_hour([(s.t, s.fds) for s in warm])
    unexpected = sum(s.unexpected for s in samples)
    print()
    for label, s in (("start", first), ("after warm-up", after), ("end", last)):
        print(f"{label:>14}: rss {s.rss / 2**20:.1f} MiB (proxy {s.rss_proxy / 2**20:.1f}), fds {s.fds}, "
              f"p99 {s.p99 * 1000:.1f} ms")
    growth = (last.rss - after.rss) / after.rss if after.rss else 0.0
    print(f"resident memory after warm-up: {growth:+.1%} over {(last.t - after.t) / 60:.0f} min, "
          f"slope {rss_slope / 2**20:+.1f} MiB/hour ({rss_slope / after.rss:+.1%}/hour); target < +5 %/hour")
    print(f"file descriptors after warm-up: {after.fds} -> {last.fds}, slope {fd_slope:+.1f}/hour; target flat")
    print(f"requests sent {sum(s.sent for s in samples)}; captures dropped: proxy {last.dropped_proxy:.0f}, "
          f"pipeline {last.dropped_pipeline:.0f}; client errors not caused by the upstream: {unexpected} (target 0)")
    print(f"sidecar log: {work / 'sidecar.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
