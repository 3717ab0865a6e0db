#!/usr/bin/env python3
"""What the sidecar costs: added latency and throughput against the same upstream, called directly and
through nginx, measured in one run.

Runs, on loopback, a minimal fast upstream (fixed OpenAI-style JSON, or an SSE stream of chat
chunks), nginx (Debian package) as a reverse proxy, `genai-sre serve` (a supervisor, proxy
worker(s) and the agent) in front of it, and `wrk` (Debian package) as the client. Prints:

* non-streaming, 1 connection: p50/p99 latency direct, through nginx and through the sidecar, and
  what each proxy adds;
* non-streaming, 64 connections: requests/s direct, through nginx, and through the sidecar with
  1 and 2 proxy workers;
* streaming, sequential: time to first content chunk direct, through nginx and through the sidecar
  (added TTFT);
* detectors on (latency + hallucination) at a fixed 100 requests/s: share of exchanges scored and
  p99 against detectors off;
* saturation (64 connections) with detectors on: requests/s against detectors off, and the share of
  exchanges the agent scored.

Targets (2 vCPUs): added p50 <= max(0.3 ms, 6x nginx's added); added TTFT <= 0.5 ms; >= 3,000
requests/s at 64 connections; scored share at saturation >= 50 %.

CPU placement, with at least two CPUs: the proxy worker(s) and nginx on CPU 0; the agent, the
upstream and wrk on the last CPU. `--compare DIR` also measures another checkout of genai-sre (its
source tree, e.g. a `git worktree` of an older commit) in the same run, for before/after figures.

Usage: `python bench/proxy_overhead.py [--duration 10] [--quick] [--compare DIR] [--out FILE]`.
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


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  fastcgi_temp_path {work}/nginx-fastcgi;
  uwsgi_temp_path {work}/nginx-uwsgi;
  scgi_temp_path {work}/nginx-scgi;
  upstream llm {{ server 127.0.0.1:{upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} backlog=2048;
    location / {{
      proxy_pass http://llm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


class Nginx:
    def __init__(self, upstream_port: int, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=workdir, upstream=upstream_port, port=self.port))
        self.proc = subprocess.Popen([*pin(0), "nginx", "-c", str(conf)], stderr=subprocess.PIPE)
        wait_port(self.port, 10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _place(pid: int) -> None:
    """Proxy workers on CPU 0, the agent (and its helpers) on the last CPU."""
    import psutil

    n = os.cpu_count() or 1
    if n < 2:
        return
    root = psutil.Process(pid)
    if not any("--role" in " ".join(c.cmdline()) for c in root.children(recursive=True)):
        root.cpu_affinity([0])  # a one-process sidecar (an older genai-sre): forwarding and scoring on CPU 0
        return
    for child in root.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            child.cpu_affinity([0] if "--role proxy" in cmd else [n - 1])
        except psutil.Error:
            pass


class Sidecar:
    def __init__(
        self, upstream_port: int, detectors: bool, workdir: Path, workers: int = 1, tree: Path | None = None
    ) -> None:
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
        tag = f"{int(detectors)}-{workers}-{abs(hash(str(tree)))}"
        cfg = workdir / f"sidecar-{tag}.yaml"
        cfg.write_text(
            f"""version: genai-sre/v1
proxy: {{host: 127.0.0.1, port: {self.port}}}
admin: {{host: 127.0.0.1, port: {self.admin}}}
upstreams: [{{name: bench, url: "http://127.0.0.1:{upstream_port}"}}]
storage: {{data_dir: "{workdir / ("data" + tag)}"}}
slo: {{file: null}}
alerting: {{file: null}}
logging: {{level: WARNING}}
{dets}"""
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        argv = [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=workdir)
        wait_port(self.port, 90)
        wait_port(self.admin, 90)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # ready: a worker reported to the agent
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=5).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        _place(self.proc.pid)

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
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _overhead(say, label: str, url_port: int, d1: dict[str, float], script: Path, duration: float) -> dict[str, float]:
    url = f"http://127.0.0.1:{url_port}/v1/chat/completions"
    wrk(url, 1, 2, script)  # warm-up
    r = wrk(url, 1, duration, script)
    say(
        f"non-streaming, 1 connection, {label}: p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms | "
        f"added p50 {r['p50_ms'] - d1['p50_ms']:.3f} ms p99 {r['p99_ms'] - d1['p99_ms']:.3f} ms"
    )
    return {"added_p50_ms": r["p50_ms"] - d1["p50_ms"], "added_p99_ms": r["p99_ms"] - d1["p99_ms"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--quick", action="store_true", help="3-second runs (smoke test)")
    ap.add_argument("--skip-detectors", action="store_true", help="skip the detectors-on runs")
    ap.add_argument("--compare", type=Path, help="another genai-sre source tree to measure in the same run")
    ap.add_argument("--out", help="also write the results as Markdown to this file")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install -y {tool}", file=sys.stderr)
            return 2
    duration = 3.0 if args.quick else args.duration
    work = Path(tempfile.mkdtemp(prefix="genai-sre-bench-"))
    script = work / "post.lua"
    script.write_text(WRK_LUA)
    up_port = free_port()
    upstream = subprocess.Popen([*pin(-1), sys.executable, "-c", UPSTREAM, str(up_port)])
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        wait_port(up_port)
        cpu = platform.processor() or platform.machine()
        say(f"machine: {platform.node()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        wrk(direct_url, 1, 2, script)
        d1 = wrk(direct_url, 1, duration, script)
        say(f"non-streaming, 1 connection, direct: p50 {d1['p50_ms']:.3f} ms p99 {d1['p99_ms']:.3f} ms")
        d64 = wrk(direct_url, 64, duration, script)
        say(f"non-streaming, 64 connections, direct: {d64['rps']:.0f} req/s")
        n = 100 if args.quick else 300
        td = ttft(up_port, n)
        say(f"streaming, sequential ({n}), direct: TTFT p50 {statistics.median(td) * 1000:.3f} ms")

        def ttft_line(label: str, port: int) -> float:
            tp = ttft(port, n)
            added = (statistics.median(tp) - statistics.median(td)) * 1000
            say(
                f"streaming, sequential ({n}), {label}: TTFT p50 {statistics.median(tp) * 1000:.3f} ms | "
                f"added p50 {added:.3f} ms p99 {(pctl(tp, 0.99) - pctl(td, 0.99)) * 1000:.3f} ms"
            )
            return added

        nginx = Nginx(up_port, work)
        try:
            ng = _overhead(say, "nginx", nginx.port, d1, script, duration)
            n64 = wrk(f"http://127.0.0.1:{nginx.port}/v1/chat/completions", 64, duration, script)
            say(f"non-streaming, 64 connections, nginx: {n64['rps']:.0f} req/s (ratio to direct "
                f"{n64['rps'] / d64['rps']:.2f})")
            ttft_line("nginx", nginx.port)
        finally:
            nginx.stop()

        trees: list[tuple[str, Path | None]] = [("genai-sre", None)]
        if args.compare is not None:
            trees.append((f"genai-sre {args.compare.name}", args.compare.resolve()))
        off_lat: list[float] = []
        off_sat = 0.0
        for label, tree in trees:
            sc = Sidecar(up_port, detectors=False, workdir=work, tree=tree)
            try:
                g = _overhead(say, label, sc.port, d1, script, duration)
                p64 = wrk(f"http://127.0.0.1:{sc.port}/v1/chat/completions", 64, duration, script)
                say(
                    f"non-streaming, 64 connections, {label}, 1 worker: {p64['rps']:.0f} req/s (ratio to direct "
                    f"{p64['rps'] / d64['rps']:.2f}) | p50 {p64['p50_ms']:.2f} ms p99 {p64['p99_ms']:.2f} ms | "
                    f"non-2xx {p64['non2xx']:.0f}"
                )
                added_ttft = ttft_line(label, sc.port)
                if tree is None:
                    say(
                        f"targets, {label}: added p50 {g['added_p50_ms']:.3f} ms vs max(0.3, 6 x nginx "
                        f"{ng['added_p50_ms']:.3f}) = {max(0.3, 6 * ng['added_p50_ms']):.3f} ms | added TTFT "
                        f"{added_ttft:.3f} ms vs 0.5 ms | {p64['rps']:.0f} req/s vs 3000"
                    )
                    off_lat = asyncio.run(_fixed_rate(sc.port, 100, duration))
                    off_sat = p64["rps"]
            finally:
                sc.stop()
        sc2 = Sidecar(up_port, detectors=False, workdir=work, workers=2)
        try:
            url2 = f"http://127.0.0.1:{sc2.port}/v1/chat/completions"
            wrk(url2, 64, 2, script)
            p64w2 = wrk(url2, 64, duration, script)
            say(f"non-streaming, 64 connections, genai-sre, 2 workers: {p64w2['rps']:.0f} req/s (ratio to direct "
                f"{p64w2['rps'] / d64['rps']:.2f})")
        finally:
            sc2.stop()
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
                    f"(ratio {on64['rps'] / off_sat:.2f}) | scored share {sat_scored:.1%} (target >= 50 %)"
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
