#!/usr/bin/env python3
"""What the sidecar costs: added latency and throughput against the same upstream called directly.

Runs, on loopback, a minimal fast upstream (fixed OpenAI-style JSON, or an SSE
stream of chat chunks), the sidecar (`genai-sre serve`, one process) in front of
it, and `wrk` (Debian package) as the client. Prints, measured in one run:

* non-streaming, 1 connection: p50/p99 latency direct and through the sidecar, and the difference;
* non-streaming, 64 connections: requests/s direct and through the sidecar;
* streaming, sequential: time to first content chunk direct and through the sidecar (added TTFT);
* detectors on (latency + hallucination) at a fixed 100 requests/s: share of exchanges scored and
  added p99 against detectors off;
* saturation (64 connections) with detectors on: requests/s against detectors off, and the scored share.

Usage: `python bench/proxy_overhead.py [--duration 10] [--quick] [--out docs/performance.md]`.
CPU placement: the sidecar runs on CPU 0, the upstream and wrk on the last CPU (taskset), when
there are at least two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAT_BODY = json.dumps(
    {
        "model": "bench",
        "messages": [
            {"role": "system", "content": "Answer from the documents. The Eiffel Tower is 330 metres tall."},
            {"role": "user", "content": "How tall is the Eiffel Tower?"},
        ],
    }
)

UPSTREAM = r"""
import asyncio, json, sys
from aiohttp import web
ANSWER = json.dumps({"id": "chatcmpl-b", "object": "chat.completion", "created": 0, "model": "bench",
  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
  "content": "The Eiffel Tower is 330 metres tall."}}],
  "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}).encode()
def chunk(text, finish=None):
    d = {"content": text} if text is not None else {}
    return ("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "bench",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}) + "\n\n").encode()
async def handler(request):
    body = await request.read()
    if b'"stream": true' in body or b'"stream":true' in body:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await asyncio.sleep(0.02)
        for w in ["The", " Eiffel", " Tower", " is", " 330", " metres", " tall."]:
            await resp.write(chunk(w))
            await asyncio.sleep(0.002)
        await resp.write(chunk(None, "stop") + b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
    return web.Response(body=ANSWER, content_type="application/json")
async def main():
    server = web.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    await loop.create_server(server, "127.0.0.1", int(sys.argv[1]), backlog=2048)
    await asyncio.Event().wait()
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
asyncio.run(main())
"""

WRK_LUA = (
    'wrk.method = "POST"\n'
    'wrk.headers["Content-Type"] = "application/json"\n'
    'wrk.headers["Authorization"] = "Bearer sk-bench"\n'
    f"wrk.body = [[{CHAT_BODY}]]\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def pin(cpu: int) -> list[str]:
    n = os.cpu_count() or 1
    if n < 2 or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu % n)]


def wrk(url: str, connections: int, duration: float, script: Path) -> dict[str, float]:
    cmd = [*pin(-1), "wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        value = float(m.group(1))
        return value / 1000.0 if m.group(2) == "us" else value * 1000.0 if m.group(2) == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "non2xx": float(errors.group(1)) if errors else 0.0}


async def _ttft_once(port: int) -> float:
    body = json.dumps({**json.loads(CHAT_BODY), "stream": True}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    t0 = time.perf_counter()
    writer.write(req)
    await writer.drain()
    buf = b""
    while b'"content": "The"' not in buf:
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("stream ended before content")
        buf += data
    ttft = time.perf_counter() - t0
    while await reader.read(65536):
        pass
    writer.close()
    return ttft


def ttft(port: int, n: int) -> list[float]:
    async def run() -> list[float]:
        for _ in range(10):
            await _ttft_once(port)
        return [await _ttft_once(port) for _ in range(n)]

    return asyncio.run(run())


async def _fixed_rate(port: int, rate: float, duration: float) -> list[float]:
    import aiohttp

    lat: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            t0 = time.perf_counter()
            async with session.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=CHAT_BODY,
                headers={"Content-Type": "application/json"},
            ) as r:
                await r.read()
            lat.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        i = 0
        while (now := time.perf_counter()) - start < duration:
            due = start + i / rate
            if now >= due:
                tasks.append(asyncio.create_task(one()))
                i += 1
            else:
                await asyncio.sleep(due - now)
        await asyncio.gather(*tasks)
    return lat


def pctl(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Sidecar:
    def __init__(self, upstream_port: int, detectors: bool, workdir: Path) -> None:
        self.port = free_port()
        self.admin = free_port()
        dets = (
            """
detectors:
  - {name: latency, type: latency}
  - {name: hallucination, type: hallucination}
"""
            if detectors
            else "detectors: []\n"
        )
        cfg = workdir / f"sidecar-{int(detectors)}.yaml"
        cfg.write_text(
            f"""version: genai-sre/v1
proxy: {{host: 127.0.0.1, port: {self.port}}}
admin: {{host: 127.0.0.1, port: {self.admin}}}
upstreams: [{{name: bench, url: "http://127.0.0.1:{upstream_port}"}}]
storage: {{data_dir: "{workdir / ("data" + str(int(detectors)))}"}}
slo: {{file: null}}
alerting: {{file: null}}
logging: {{level: WARNING}}
{dets}"""
        )
        exe = Path(sys.executable).with_name("genai-sre")
        self.proc = subprocess.Popen(
            [*pin(0), str(exe), "serve", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        wait_port(self.port, 60)
        wait_port(self.admin, 10)

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=10).read().decode()

    def scored_share(self, detector: str) -> tuple[float, float]:
        """(scored, total runs) for a detector, from the sidecar's own counters."""
        text = self.metrics()
        runs = {
            m.group(1): float(m.group(2))
            for m in re.finditer(
                rf'genai_sre_detector_runs_total{{detector="{detector}",outcome="(\w+)"}} ([\d.e+]+)', text
            )
        }
        captures = re.search(r"^genai_sre_pipeline_captures_total ([\d.e+]+)", text, re.M)
        total = float(captures.group(1)) if captures else sum(runs.values())
        return runs.get("scored", 0.0), total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--quick", action="store_true", help="3-second runs (smoke test)")
    ap.add_argument("--skip-detectors", action="store_true", help="skip the detectors-on runs")
    ap.add_argument("--out", help="also write the results as Markdown to this file")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    duration = 3.0 if args.quick else args.duration
    work = Path(tempfile.mkdtemp(prefix="genai-sre-bench-"))
    script = work / "post.lua"
    script.write_text(WRK_LUA)
    up_port = free_port()
    upstream = subprocess.Popen([*pin(-1), sys.executable, "-c", UPSTREAM, str(up_port)])
    results: dict[str, float] = {}
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        wait_port(up_port)
        cpu = platform.processor() or platform.machine()
        say(f"machine: {platform.node()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        sc = Sidecar(up_port, detectors=False, workdir=work)
        try:
            direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
            proxy_url = f"http://127.0.0.1:{sc.port}/v1/chat/completions"
            wrk(direct_url, 1, 2, script)
            wrk(proxy_url, 1, 2, script)  # warm-up
            d1 = wrk(direct_url, 1, duration, script)
            p1 = wrk(proxy_url, 1, duration, script)
            say(
                f"non-streaming, 1 connection: direct p50 {d1['p50_ms']:.3f} ms p99 {d1['p99_ms']:.3f} ms | "
                f"sidecar p50 {p1['p50_ms']:.3f} ms p99 {p1['p99_ms']:.3f} ms | "
                f"added p50 {p1['p50_ms'] - d1['p50_ms']:.3f} ms p99 {p1['p99_ms'] - d1['p99_ms']:.3f} ms"
            )
            d64 = wrk(direct_url, 64, duration, script)
            p64 = wrk(proxy_url, 64, duration, script)
            say(
                f"non-streaming, 64 connections: direct {d64['rps']:.0f} req/s | sidecar {p64['rps']:.0f} req/s "
                f"(ratio {p64['rps'] / d64['rps']:.2f}) | sidecar p50 {p64['p50_ms']:.2f} ms "
                f"p99 {p64['p99_ms']:.2f} ms | non-2xx {p64['non2xx']:.0f}"
            )
            n = 100 if args.quick else 300
            td = ttft(up_port, n)
            tp = ttft(sc.port, n)
            say(
                f"streaming, sequential ({n}): TTFT direct p50 {statistics.median(td) * 1000:.3f} ms | "
                f"sidecar p50 {statistics.median(tp) * 1000:.3f} ms | added TTFT p50 "
                f"{(statistics.median(tp) - statistics.median(td)) * 1000:.3f} ms p99 "
                f"{(pctl(tp, 0.99) - pctl(td, 0.99)) * 1000:.3f} ms"
            )
            results.update(
                added_p50_ms=p1["p50_ms"] - d1["p50_ms"],
                rps64=p64["rps"],
                added_ttft_ms=(statistics.median(tp) - statistics.median(td)) * 1000,
            )
            off_lat = asyncio.run(_fixed_rate(sc.port, 100, duration))
            off_sat = p64["rps"]
        finally:
            sc.stop()
        if not args.skip_detectors:
            sc_on = Sidecar(up_port, detectors=True, workdir=work)
            try:
                on_url = f"http://127.0.0.1:{sc_on.port}/v1/chat/completions"
                wrk(on_url, 1, 2, script)
                time.sleep(2)
                before = sc_on.scored_share("hallucination")
                on_lat = asyncio.run(_fixed_rate(sc_on.port, 100, duration))
                time.sleep(3)  # let the pipeline finish what it queued
                after = sc_on.scored_share("hallucination")
                scored = (after[0] - before[0]) / max(1.0, after[1] - before[1])
                say(
                    f"detectors on (latency + hallucination) at 100 req/s for {duration:.0f} s: scored "
                    f"{scored:.1%} | p99 {pctl(on_lat, 0.99) * 1000:.2f} ms vs detectors off "
                    f"{pctl(off_lat, 0.99) * 1000:.2f} ms (ratio {pctl(on_lat, 0.99) / pctl(off_lat, 0.99):.2f})"
                )
                before = sc_on.scored_share("hallucination")
                on64 = wrk(on_url, 64, duration, script)
                time.sleep(3)
                after = sc_on.scored_share("hallucination")
                sat_scored = (after[0] - before[0]) / max(1.0, after[1] - before[1])
                say(
                    f"saturation, 64 connections: detectors on {on64['rps']:.0f} req/s vs off {off_sat:.0f} req/s "
                    f"(ratio {on64['rps'] / off_sat:.2f}) | scored share {sat_scored:.1%}"
                )
            finally:
                sc_on.stop()
    finally:
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        Path(args.out).write_text("\n".join(f"    {line}" for line in lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
