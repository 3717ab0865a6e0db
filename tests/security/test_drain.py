"""SIGTERM in a pod: readiness off at once, still serving for `proxy.drain_s`, then open streams finish."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.mock.server import MockUpstream
from tests.harness import LoopThread, start_app
from tests.servers import free_port

SLOW_STREAM = Scenario(phases=(Phase(name="slow", ttft_s=Latency(0.05, 0.05), tokens_per_s=20),))
BODY = {
    "model": "m",
    "stream": True,
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
}


def _wait_ready(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"port {port} never became ready")


@pytest.mark.integration
def test_serve_health_and_sigterm_drains_then_lets_open_streams_finish(tmp_path: Path) -> None:
    lt = LoopThread()
    runner, up_port = lt.call(start_app(MockUpstream(SLOW_STREAM).app()))
    port, admin = free_port(), free_port()
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(
        f"upstreams: [{{name: mock, url: 'http://127.0.0.1:{up_port}'}}]\n"
        f"proxy: {{port: {port}, shutdown_grace_s: 20, drain_s: 1.5}}\nadmin: {{port: {admin}}}\n"
        f"storage: {{data_dir: '{tmp_path / 'data'}'}}\nslo: {{file: null}}\nalerting: {{file: null}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_ready(admin)
        assert httpx.get(f"http://127.0.0.1:{admin}/healthz").json()["status"] == "ok"
        ready = httpx.get(f"http://127.0.0.1:{admin}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        received: list[bytes] = []
        done = threading.Event()

        def stream() -> None:
            with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY, timeout=30) as r:
                for part in r.iter_raw():
                    received.append(part)
            done.set()

        idle = httpx.Client()  # an idle keep-alive connection must not hold the shutdown up
        assert idle.get(f"http://127.0.0.1:{port}/health").status_code == 200
        t = threading.Thread(target=stream)
        t.start()
        while not received:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # draining: readiness is off at once, but new connections are still accepted and served
        assert httpx.get(f"http://127.0.0.1:{admin}/readyz").status_code == 503
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={**BODY, "stream": False}, timeout=10)
        assert r.status_code == 200
        time.sleep(2.0)
        with pytest.raises(httpx.ConnectError):  # after drain_s: no longer accepting
            httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY, timeout=2)
        assert done.wait(20), "the open stream did not finish"
        assert b"".join(received).endswith(b"data: [DONE]\n\n")
        finished = time.monotonic()
        assert proc.wait(20) == 0
        assert time.monotonic() - finished < 8, "shutdown waited for the idle connection"
        idle.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        lt.call(runner.cleanup())
        lt.stop()
