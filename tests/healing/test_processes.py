"""`genai-sre serve --workers 2`: one worker's breaker moves both workers, across real processes and the channel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from genai_sre.mock.server import MockUpstream
from tests.harness import LoopThread, start_app
from tests.healing.twins import BACKUP, PRIMARY
from tests.servers import free_port
from tests.sidecar_process import SidecarProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "heal-test-token"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_breaker_in_one_worker_fails_over_every_worker_and_fails_back(tmp_path: Path) -> None:
    lt = LoopThread()
    primary, backup = MockUpstream(PRIMARY), MockUpstream(BACKUP)
    primary.pinned = "healthy"
    (p_runner, p_port), (b_runner, b_port) = lt.call(start_app(primary.app())), lt.call(start_app(backup.app()))
    port, admin = free_port(), free_port()
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(
        "upstreams:\n"
        f"  - {{name: primary, url: 'http://127.0.0.1:{p_port}', connect_timeout_s: 2, read_timeout_s: 5,\n"
        "     fallback: {upstream: backup, trip_after_failures: 3, probe_interval_s: 0.2,\n"
        "                recover_after_successes: 2}}\n"
        f"  - {{name: backup, url: 'http://127.0.0.1:{b_port}', connect_timeout_s: 2, read_timeout_s: 5}}\n"
        f"proxy: {{port: {port}, shutdown_grace_s: 2, drain_s: 0}}\n"
        f"admin: {{port: {admin}}}\n"
        f"storage: {{data_dir: '{tmp_path / 'data'}'}}\n"
        "slo: {file: null}\nalerting: {file: null}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg), "--workers", "2"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "GENAI_SRE_ADMIN_TOKEN": TOKEN},
    )
    sc = SidecarProcess(proc, port, admin, tmp_path / "data")
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def chat() -> int:  # a new connection each time, so both workers take requests
        with httpx.Client(timeout=10) as client:
            return client.post(f"{sc.proxy_url}/v1/chat/completions", json=BODY,
                               headers={"connection": "close"}).status_code

    def mitigations() -> list[dict[str, object]]:
        r = httpx.get(f"{sc.admin_url}/admin/annotations?kind=mitigation", headers=auth, timeout=5)
        r.raise_for_status()
        return list(r.json()["annotations"])

    try:
        for _ in range(600):
            try:
                if httpx.get(sc.admin_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, sc.log
            time.sleep(0.1)
        assert sc.total("genai_sre_failover_active", upstream="primary") == 0.0
        served_before = sum(chat() == 200 for _ in range(20))
        assert served_before == 20
        assert httpx.get(f"{sc.admin_url}/healthz", timeout=5).json()["proxy_workers"] == 2

        primary.pinned = "down"
        statuses = [chat() for _ in range(40)]
        failed = statuses.count(503)
        # the first worker to see 3 failures in a row opens its breaker; the agent moves the other one at once
        assert failed <= 2 * 3 - 1, statuses
        assert statuses[failed:] == [200] * (40 - failed), statuses
        assert sc.total("genai_sre_failover_total", upstream="primary", reason="breaker") == 1.0
        assert sc.total("genai_sre_failover_active", upstream="primary") == 1.0
        (record,) = mitigations()
        assert record["labels"]["action"] == "failover" and "consecutive failures" in str(record["text"])

        primary.pinned = "healthy"
        deadline = time.monotonic() + 30
        while sc.total("genai_sre_failover_active", upstream="primary") != 0.0:
            assert time.monotonic() < deadline, sc.log
            chat()
            time.sleep(0.05)
        assert [m["labels"]["action"] for m in mitigations()] == ["failover", "failback"]
        before = primary.count
        assert [chat() for _ in range(5)] == [200] * 5 and primary.count == before + 5
        health = httpx.get(f"{sc.admin_url}/healthz", timeout=5).json()
        assert health["failover"]["primary"]["active"] is False
    finally:
        assert sc.stop() == 0, sc.log
        lt.call(p_runner.cleanup())
        lt.call(b_runner.cleanup())
        lt.stop()
