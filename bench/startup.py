#!/usr/bin/env python3
"""What the bundled detectors cost at start: time to ready and memory, against no detectors.

Starts `genai-sre serve` (supervisor, one proxy worker, the agent) on loopback ports in front
of an upstream that is never called, once with the bundled config as shipped (latency,
hallucination, refusal, bias) and once with `detectors: []` and the SLOs that need no detector,
`--runs` times each, alternating. Prints, per configuration, the median and range of:

* seconds from `exec` to `/readyz` answering 200 (the agent serves the admin port once every
  detector is loaded; the proxy port forwards before that);
* resident memory (VmRSS) of each process once ready: supervisor, proxy worker, agent.

Usage: `python bench/startup.py [--runs 5]`. Both configurations run in this one invocation, so
compare them as a ratio; absolute seconds depend on the machine and its page cache.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def role(pid: int) -> str:
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"--role" in cmd:
        return cmd[cmd.index(b"--role") + 1].decode()
    return "supervisor"


def one_run(workdir: Path, detectors: bool) -> tuple[float, dict[str, float]]:
    port, admin = free_port(), free_port()
    cfg = workdir / f"sidecar-{int(detectors)}.yaml"
    text = (
        f"upstreams: [{{name: up, url: 'http://127.0.0.1:{free_port()}'}}]\n"
        f"proxy: {{port: {port}}}\nadmin: {{port: {admin}}}\n"
        f"storage: {{data_dir: '{workdir / ('data' + str(int(detectors)))}'}}\n"
    )
    if not detectors:  # the bundled SLOs that name no detector (the others would be refused at start)
        slos = workdir / "slos-no-detectors.yaml"
        slos.write_text(
            "version: genai-sre/slos/v1\nslos:\n"
            "  - {name: chat-availability, objective: 99.5, period: 30d, sli: {kind: availability}}\n"
        )
        text += f"detectors: []\nslo: {{file: '{slos}'}}\n"
    cfg.write_text(text)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("genai-sre")
    started = time.monotonic()
    proc = subprocess.Popen([str(exe), "serve", "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = started + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"genai-sre serve exited with {proc.returncode} ({cfg.read_text()})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        else:
            raise SystemExit("genai-sre serve never became ready")
        ready = time.monotonic() - started
        time.sleep(1.0)  # let every process settle after its first requests
        mem = {"supervisor": rss_kib(proc.pid) / 1024}
        for child in children(proc.pid):
            mem[role(child)] = rss_kib(child) / 1024
        return ready, mem
    finally:
        proc.terminate()
        proc.wait(30)


def summary(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):.2f} {unit} (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    results: dict[bool, list[tuple[float, dict[str, float]]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="genai-sre-startup-") as tmp:
        for _ in range(args.runs):
            for detectors in (False, True):
                results[detectors].append(one_run(Path(tmp), detectors))
    print(f"genai-sre serve start, {args.runs} runs each, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    base = statistics.median(r for r, _ in results[False])
    for detectors in (False, True):
        name = "bundled detectors (latency, hallucination, refusal, bias)" if detectors else "no detectors"
        runs = results[detectors]
        ready = [r for r, _ in runs]
        print(f"- {name}: ready after {summary(ready, 's')}, {statistics.median(ready) / base:.2f}x no detectors")
        for proc in ("supervisor", "proxy", "agent"):
            mem = [m.get(proc, 0.0) for _, m in runs]
            print(f"    {proc:<10} RSS {summary(mem, 'MiB')}")


if __name__ == "__main__":
    main()
