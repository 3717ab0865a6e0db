"""Several primaries on one PostgreSQL database: concurrent webhooks, shared acks and silences, a primary killed.

Each primary is a real process (`tests.incidents.webhook_server`) on loopback,
all on one database of the test PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from genai_sre.alerting.config import AlertingConfig, DeliveryConfig, ReceiverConfig, RouteConfig
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.router import AlertRouter
from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.incidents.store import open_store
from tests.alerting.helpers import FakeClock, RecordingReceiver, alert
from tests.incidents.test_crash_safety import TOKEN, payload, start
from tests.servers import free_port

pytestmark = pytest.mark.integration
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def primaries(tmp_path: Path, pg_url: str) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    procs, bases = [], []
    for name in ("a", "b"):
        port = free_port()
        procs.append(start(tmp_path / name, port, pg_url))
        bases.append(f"http://127.0.0.1:{port}")
    try:
        yield bases, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)


def webhook(status: str = "firing", group: str = "chat") -> dict[str, Any]:
    fired = alert(slo=group, starts_at=1_800_000_000.0, annotations={"summary": f"{group} burning"})
    if status == "resolved":
        fired = alert(slo=group, status="resolved", starts_at=1_800_000_000.0, ends_at=1_800_000_900.0)
    n = Notification("genai-sre", f'{{}}:{{slo="{group}"}}', status, {"slo": group}, (fired,), 1_800_000_000.0)
    return n.to_webhook()


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=HEADERS) as r:
        return r.status, await r.json()


def test_same_webhook_to_two_primaries_at_once(primaries: tuple[list[str], list[Any]], pg_url: str) -> None:
    bases, _ = primaries

    async def main() -> None:
        applied = []
        async with aiohttp.ClientSession() as s:
            for _ in range(25):  # Alertmanager posts each notification to every primary at the same moment
                results = await asyncio.gather(
                    *(post(s, b + "/admin/alertmanager", webhook()) for b in bases for _ in range(2))
                )
                assert all(status == 200 for status, _ in results), results
                applied += [body["incident_id"] for _, body in results if not body["duplicate"]]
            assert applied == ["1"]  # applied once, by whichever primary committed first
            # an Alertmanager HA pair: the same alert in bodies that differ (each its own externalURL)
            for _ in range(10):
                results = await asyncio.gather(
                    *(
                        post(s, b + "/admin/alertmanager", {**webhook(), "externalURL": f"http://am-{i}"})
                        for i, b in enumerate(bases)
                    )
                )
                assert all(status == 200 and body["incident_id"] in ("1", None) for status, body in results)
            status, body = await post(s, bases[1] + "/admin/alertmanager", webhook("resolved"))
            assert status == 200 and body == {"incident_id": "1", "duplicate": False}
            for base in bases:
                async with s.get(base + "/admin/incidents/1", headers=HEADERS) as r:
                    detail = await r.json()
                assert detail["incident"]["status"] == "resolved"
                assert [a["status"] for a in detail["alerts"]] == ["resolved"]
                kinds = [e["kind"] for e in detail["timeline"]]
                assert kinds.count("opened") == 1 and kinds.count("alert_firing") == 1
                assert kinds.count("alert_resolved") == 1 and kinds.count("resolved") == 1

    asyncio.run(main())
    store = open_store(pg_url, ".")
    assert [i.id for i, _ in store.all_incidents()] == ["1"]
    assert len(store.alerts("1")) == 1
    store.close()


def test_ack_and_silence_through_one_seen_by_the_other(
    primaries: tuple[list[str], list[Any]], pg_url: str, tmp_path: Path
) -> None:
    bases, _ = primaries
    a, b = bases
    clock = FakeClock(1_800_000_000.0)
    store_b = open_store(pg_url, tmp_path)  # primary B's router, in this process, on the same database
    receiver = RecordingReceiver()
    cfg = AlertingConfig(
        route=RouteConfig(receiver="pager", group_wait_s=0, group_interval_s=1),
        receivers=(ReceiverConfig("pager", "stdout"),),
        delivery=DeliveryConfig(log_file=None),
        silences_file=None,
    )
    router_b = AlertRouter(
        cfg, {"pager": receiver}, clock=clock, silences=Silences(clock, backend=StoreSilences(store_b))
    )

    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            assert (await post(s, a + "/admin/alertmanager", webhook()))[0] == 200
            async with s.post(a + "/admin/incidents/1/ack", json={"text": "on it"}, headers=HEADERS) as r:
                assert r.status == 200
            async with s.get(b + "/admin/incidents?status=acknowledged", headers=HEADERS) as r:
                assert [i["id"] for i in (await r.json())["incidents"]] == ["1"]

            silence = {"matchers": ['slo="chat-latency"'], "ends_at": clock.now + 3600, "comment": "maintenance"}
            status, created = await post(s, a + "/admin/silences", silence)
            assert status == 201
            async with s.get(b + "/admin/silences", headers=HEADERS) as r:
                assert [x["id"] for x in (await r.json())["silences"]] == [created["id"]]

            await router_b.submit(alert(slo="chat-latency", starts_at=clock.now))
            await router_b.submit(alert(slo="chat-errors", starts_at=clock.now))
            await router_b.flush()
            await router_b.drain()
            assert {a.labels["slo"] for n in receiver.got for a in n.alerts} == {"chat-errors"}
            before = len(receiver.got)

            async with s.delete(b + f"/admin/silences/{created['id']}", headers=HEADERS) as r:
                assert r.status == 200
            clock.advance(2)
            await router_b.flush()
            await router_b.drain()
            assert "chat-latency" in {a.labels["slo"] for n in receiver.got[before:] for a in n.alerts}
        await router_b.aclose()

    try:
        asyncio.run(main())
    finally:
        store_b.close()


def test_one_primary_killed_mid_traffic(primaries: tuple[list[str], list[Any]], pg_url: str) -> None:
    bases, procs = primaries
    acked: set[int] = set()
    sent = 160

    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(sent):
            queue.put_nowait(n)

        async def deliver(session: aiohttp.ClientSession, first: int) -> None:
            """Like Alertmanager: try one primary; on an error, the other; until a 2xx."""
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                for attempt in range(20):
                    base = bases[(first + attempt) % 2]
                    try:
                        async with session.post(base + "/admin/alertmanager", json=payload(n), headers=HEADERS) as r:
                            if r.status == 200:
                                acked.add(n)
                                break
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        pass
                    await asyncio.sleep(0.05)

        async def killer() -> None:
            while len(acked) < 40:
                await asyncio.sleep(0.01)
            os.kill(procs[0].pid, signal.SIGKILL)  # requests to A are in flight

        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            await asyncio.gather(killer(), *(deliver(s, i % 2) for i in range(6)))

    asyncio.run(main())
    procs[0].wait(10)
    assert acked == set(range(sent))
    store = open_store(pg_url, ".")
    groups = [i.group_key for i, _ in store.all_incidents()]
    store.close()
    assert len(groups) == len(set(groups)) == sent  # every webhook exactly once, none lost
