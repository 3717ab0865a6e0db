"""Store outages: PostgreSQL stopped and started under webhooks; a SQLite write lock held by another process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from genai_sre.alerting.notification import Notification
from genai_sre.config import load_config
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.stack import AlertingStack, build_alerting
from genai_sre.incidents.store import DB_NAME, IncidentStore, open_store
from tests.alerting.helpers import FakeClock, alert
from tests.pg import postgres_server
from tests.servers import free_port

pytestmark = pytest.mark.integration
TOKEN = "outage-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_800_000_000.0


def sequence() -> list[dict[str, Any]]:
    """What Alertmanager would send for five SLO groups: firing, repeats, a second alert, resolutions."""
    out = []
    for g in range(5):
        slo = f"slo-{g}"
        first = alert(slo=slo, starts_at=T0 + g)
        second = alert(slo=slo, severity="ticket", starts_at=T0 + g + 1)
        key = f'{{}}:{{slo="{slo}"}}'
        out.append(Notification("genai-sre", key, "firing", {"slo": slo}, (first,), T0).to_webhook())
        out.append(Notification("genai-sre", key, "firing", {"slo": slo}, (first, second), T0).to_webhook())
        out.append(Notification("genai-sre", key, "firing", {"slo": slo}, (first, second), T0).to_webhook())
        if g % 2 == 0:
            done = (
                alert(slo=slo, status="resolved", starts_at=T0 + g, ends_at=T0 + 600),
                alert(slo=slo, severity="ticket", status="resolved", starts_at=T0 + g + 1, ends_at=T0 + 600),
            )
            out.append(Notification("genai-sre", key, "resolved", {"slo": slo}, done, T0).to_webhook())
    return out


def snapshot(store: IncidentStore) -> list[Any]:
    out: list[Any] = []
    for incident, paged_at in store.all_incidents():
        out.append(
            (
                incident,
                paged_at,
                store.alerts(incident.id),
                [(e.at, e.kind, e.text, dict(e.data)) for e in store.events(incident.id)],
            )
        )
    return out


async def serve(routes: list[web.RouteDef]) -> tuple[str, web.AppRunner]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}", runner


def test_database_stopped_and_started_under_webhooks(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 30)
    reference = IncidentService(open_store("", tmp_path / "reference"), clock)
    for body in sequence():
        reference.ingest_webhook(json.dumps(body).encode())
    expected = snapshot(reference.store)
    reference.store.close()
    assert len(expected) == 5

    with postgres_server() as pg:
        url = pg.create_database("outage")
        cfg = tmp_path / "sidecar.yaml"
        cfg.write_text(
            f"storage: {{data_dir: {tmp_path / 'data'}}}\nalerting: {{file: null}}\n"
            f"incidents: {{role: primary, store_url: '{url}'}}\n"
        )
        stack = build_alerting(load_config(cfg), clock=clock, environ={"GENAI_SRE_ADMIN_TOKEN": TOKEN})
        assert stack.service is not None
        answers: list[int] = []

        async def main() -> None:
            base, runner = await serve(stack.routes)
            await stack.start()
            restarted: asyncio.Task[None] | None = None

            async def outage() -> None:
                await asyncio.to_thread(pg.stop)
                problem = await stack.ready()
                assert problem is not None and "incident store unavailable" in problem
                await asyncio.sleep(2.0)
                await asyncio.to_thread(pg.start)

            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
                    for i, body in enumerate(sequence()):
                        if i == 6:
                            restarted = asyncio.create_task(outage())
                            await asyncio.sleep(0.5)
                        for _ in range(100):  # Alertmanager: the same body again until a 2xx
                            async with s.post(base + "/admin/alertmanager", json=body, headers=HEADERS) as r:
                                answers.append(r.status)
                                if r.status == 200:
                                    break
                                assert r.status == 503, await r.text()
                                assert "incident store unavailable" in (await r.json())["error"]
                                assert r.headers["Retry-After"]
                            await asyncio.sleep(0.2)
                        else:
                            raise AssertionError("the webhook was never accepted")
                assert restarted is not None
                await restarted
                assert await stack.ready() is None
            finally:
                await runner.cleanup()
                await stack.aclose()

        asyncio.run(main())
        assert 503 in answers and answers.count(200) == len(sequence())
        store = open_store(url, tmp_path)
        got = snapshot(store)
        store.close()
    assert got == expected  # exactly the state without the outage


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_sqlite_write_lock_held_elsewhere_keeps_the_loop_responsive(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(f"storage: {{data_dir: {tmp_path}}}\nalerting: {{file: null}}\n")
    stack: AlertingStack = build_alerting(load_config(cfg), clock=clock, environ={"GENAI_SRE_ADMIN_TOKEN": TOKEN})
    assert stack.service is not None
    first = Notification("r", "{}:{}", "firing", {}, (alert(starts_at=T0),), T0).to_webhook()
    stack.service.ingest_webhook(json.dumps(first).encode())

    async def main() -> tuple[list[tuple[str, int, Any]], float, list[int]]:
        base, runner = await serve(stack.routes)
        lag = 0.0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal lag
            while not stop.is_set():
                t = time.monotonic()
                await asyncio.sleep(0.01)
                lag = max(lag, time.monotonic() - t - 0.01)

        calls: list[tuple[str, str, Any]] = [
            ("POST", "/admin/incidents/1/notes", {"text": "looking"}),
            ("POST", "/admin/incidents/1/ack", {}),
            ("POST", "/admin/annotations", {"kind": "deploy", "labels": {"model": "m", "version": "2"}}),
            ("POST", "/admin/silences", {"matchers": ['slo="x"'], "duration_s": 60}),
            ("GET", "/admin/incidents", None),
            ("GET", "/admin/incidents/1", None),
        ]
        results: list[tuple[str, int, Any]] = []
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(tmp_path / DB_NAME), "2.5"], stdout=subprocess.PIPE, text=True
        )
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        beat = asyncio.create_task(heartbeat())
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:

                async def one(method: str, path: str, body: Any) -> None:
                    async with s.request(method, base + path, json=body, headers=HEADERS) as r:
                        results.append((path, r.status, await r.json()))

                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:  # while the lock is held
                    await asyncio.gather(*(one(*c) for c in calls))
                await asyncio.to_thread(locker.wait, 10)
                after: list[int] = []
                for c in calls:
                    async with s.request(c[0], base + c[1], json=c[2], headers=HEADERS) as r:
                        after.append(r.status)
        finally:
            stop.set()
            await beat
            await runner.cleanup()
            await stack.aclose()
        return results, lag, after

    results, lag, after = asyncio.run(main())
    assert {status for _, status, _ in results} <= {200, 201, 503}
    refused = [(path, body) for path, status, body in results if status == 503]
    assert refused, "writes during the lock should have been refused"
    assert all("locked" in body["error"] for _, body in refused)
    assert all(status == 200 for path, status, _ in results if path.startswith("/admin/incidents") and status != 503)
    reads = [status for path, status, _ in results if path in ("/admin/incidents", "/admin/incidents/1")]
    assert reads and all(s == 200 for s in reads)  # WAL: readers never wait for the writer
    assert lag < 0.5, f"the event loop stalled for {lag:.3f}s"
    assert after == [201, 200, 201, 201, 200, 200]
