#!/usr/bin/env python3
"""Two genai-sre source trees side by side, interleaved, in one run: before/after figures of a
forwarding change that are not swamped by the machine's drift.

Starts one upstream (the minimal one of `bench/proxy_overhead.py`) and two sidecars in front of it,
this checkout ("this") and another source tree ("other", e.g. a `git worktree` of an older commit),
with detectors off, placed on CPUs as `bench/proxy_overhead.py` does. Then, `--rounds` times,
alternating between them: added TTFT (sequential streams, new connection each, against the direct
median of the same round), p50 at one connection and requests/s at 64 connections (`wrk`).
Prints one line per round.

Usage: `python bench/forwarding_ab.py OTHER_TREE [--rounds 4] [--streams 150] [--seconds 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import proxy_overhead as po  # the bench's own helpers: upstream, sidecar, wrk, TTFT


def ttft_ms(port: int, n: int) -> float:
    async def run() -> list[float]:
        for _ in range(10):
            await po._ttft_once(port)
        return [await po._ttft_once(port) for _ in range(n)]

    return statistics.median(asyncio.run(run())) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", type=Path, help="another genai-sre source tree")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--streams", type=int, default=150, help="sequential streams per TTFT figure")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per wrk run")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="genai-sre-ab-"))
    script = work / "post.lua"
    script.write_text(po.WRK_LUA)
    up = po.free_port()
    upstream = subprocess.Popen([*po.pin(-1), sys.executable, "-c", po.UPSTREAM, str(up)])
    this = other = None
    try:
        po.wait_port(up)
        this = po.Sidecar(up, False, work)
        other = po.Sidecar(up, False, work, tree=args.other.resolve())

        def url(port: int) -> str:
            return f"http://127.0.0.1:{port}/v1/chat/completions"

        for i in range(args.rounds):
            base = (ttft_ms(up, args.streams) + ttft_ms(up, args.streams)) / 2
            ta, tb = ttft_ms(this.port, args.streams) - base, ttft_ms(other.port, args.streams) - base
            direct = po.wrk(url(up), 1, args.seconds, script)["p50_ms"]
            pa = po.wrk(url(this.port), 1, args.seconds, script)["p50_ms"] - direct
            pb = po.wrk(url(other.port), 1, args.seconds, script)["p50_ms"] - direct
            ra = po.wrk(url(this.port), 64, args.seconds, script)["rps"]
            rb = po.wrk(url(other.port), 64, args.seconds, script)["rps"]
            print(
                f"round {i + 1}: added TTFT this {ta:.3f} ms other {tb:.3f} ms | added p50, 1 connection, "
                f"this {pa:.3f} ms other {pb:.3f} ms | 64 connections this {ra:.0f} req/s other {rb:.0f} req/s",
                flush=True,
            )
    finally:
        for sc in (this, other):
            if sc is not None:
                sc.stop()
        upstream.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
