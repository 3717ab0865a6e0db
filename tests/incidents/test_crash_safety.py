"""SIGKILL the incident intake while webhooks pour in: every webhook answered 2xx is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from genai_sre.incidents.store import open_store
from tests.servers import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "crash-test-token"


def payload(n: int) -> dict[str, Any]:
    labels = {"alertname": "SLOBurnRate", "slo": f"slo-{n}", "severity": "page"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{slo="slo-{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "genai-sre",
        "groupLabels": {"slo": f"slo-{n}"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"burn {n}"},
                "startsAt": "2026-11-26T04:36:13.5Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "x",
            }
        ],
    }


def start(data_dir: Path, port: int, store_url: str = "") -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.incidents.webhook_server", str(data_dir), str(port), store_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ready", line
    return proc


async def pour(url: str, acked: list[int], workers: int = 4) -> None:
    counter = iter(range(10**6))
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            n = next(counter)
            try:
                async with session.post(url, json=payload(n), headers=headers) as r:
                    if 200 <= r.status < 300:
                        acked.append(n)
            except (TimeoutError, aiohttp.ClientError, OSError):
                return  # the server died

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))


def test_sigkill_during_writes(tmp_path: Path, store_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/admin/alertmanager"
    proc = start(tmp_path, port, store_url)
    acked: list[int] = []

    async def run() -> None:
        task = asyncio.create_task(pour(url, acked))
        while len(acked) < 40:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(run())
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= 40

    proc = start(tmp_path, port, store_url)  # restart on the same data: the intake works again and deduplicates
    try:

        async def again() -> dict[str, Any]:
            async with aiohttp.ClientSession() as s:
                async with s.post(url, json=payload(acked[0]), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    assert r.status == 200
                    return dict(await r.json())

        assert asyncio.run(again())["duplicate"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)

    store = open_store(store_url, tmp_path)
    by_group: dict[str, int] = {}
    for incident, _ in store.all_incidents():
        by_group[incident.group_key] = by_group.get(incident.group_key, 0) + 1
    store.close()
    for n in acked:
        assert by_group.get(f'{{}}:{{slo="slo-{n}"}}') == 1, n
    assert all(count == 1 for count in by_group.values())
    assert json.dumps(sorted(by_group)) != "[]"
