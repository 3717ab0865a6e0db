"""A real Alertmanager 0.25 on loopback: our router pushes to it, it notifies a webhook we run.

Checks grouping, inhibition (the ticket of a paging SLO is suppressed), the
resolve notification, and that Alertmanager's webhook feeds the incident
service through `POST /admin/alertmanager`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from genai_sre.alerting.config import AlertingConfig, ReceiverConfig, RouteConfig
from genai_sre.alerting.router import AlertRouter
from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore
from tests.alerting.helpers import alert, wait_for
from tests.servers import alertmanager, amtool, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "write-token-for-tests"

pytestmark = pytest.mark.integration


def test_shipped_alertmanager_config_checks() -> None:
    assert "SUCCESS" in amtool("check-config", ROOT / "deploy/alertmanager/alertmanager.yml")


@pytest.fixture
def am(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """Alertmanager notifying two webhooks (a recorder and the incident intake), grouping and inhibiting."""
    hook_port, admin_port = free_port(), free_port()
    config = {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "hooks",
            "group_by": ["alertname", "slo"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="page"'],
                "target_matchers": ['severity="ticket"'],
                "equal": ["alertname", "slo"],
            }
        ],
        "receivers": [
            {
                "name": "hooks",
                "webhook_configs": [
                    {"url": f"http://127.0.0.1:{hook_port}/hook", "send_resolved": True},
                    {
                        "url": f"http://127.0.0.1:{admin_port}/admin/alertmanager",
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                    },
                ],
            }
        ],
    }
    with alertmanager(tmp_path, config) as server:
        yield server.url, hook_port, admin_port


def test_router_to_real_alertmanager(am: tuple[str, int, int], tmp_path: Path) -> None:
    am_url, hook_port, admin_port = am

    async def main() -> None:
        got: list[dict[str, Any]] = []

        async def hook(request: web.Request) -> web.Response:
            got.append(await request.json())
            return web.Response(text="ok")

        store = IncidentStore.open(tmp_path / "data")
        service = IncidentService(store)
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.add_routes(admin_routes(service, None, AdminAuth(TOKEN)))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", hook_port).start()
        await web.TCPSite(runner, "127.0.0.1", admin_port).start()

        cfg = AlertingConfig(
            route=RouteConfig(receiver="am", group_by=("...",), group_wait_s=0, group_interval_s=0.2),
            receivers=(ReceiverConfig("am", "alertmanager", {"url": am_url, "resend_interval_s": 30}),),
            delivery=AlertingConfig().delivery.__class__(log_file=None),
            silences_file=None,
            tick_s=0.1,
        )
        router = AlertRouter.from_config(cfg, data_dir=tmp_path)
        await router.start()
        try:
            burn_start = 1_800_000_000.0
            page = alert(severity="page", annotations={"burn_started_at": burn_start})
            ticket = alert(severity="ticket")
            await router.submit(page)
            await router.submit(ticket)
            await wait_for(lambda: any(b["status"] == "firing" for b in got), 15)
            await asyncio.sleep(1.5)  # a later group_interval must not leak the inhibited ticket
            firing = [b for b in got if b["status"] == "firing"]
            assert all(len(b["alerts"]) == 1 and b["alerts"][0]["labels"]["severity"] == "page" for b in firing)
            first = firing[0]
            assert first["version"] == "4"
            assert first["groupKey"] == '{}:{alertname="SLOBurnRate", slo="chat-availability"}'
            assert first["groupLabels"] == {"alertname": "SLOBurnRate", "slo": "chat-availability"}

            await wait_for(lambda: len(service.list_incidents()) == 1, 10)
            (incident,) = service.list_incidents()
            assert incident.status == "open" and incident.detected_burn_start_at == burn_start

            await router.submit(alert(severity="page", status="resolved"))
            await router.submit(alert(severity="ticket", status="resolved"))
            await wait_for(lambda: any(b["status"] == "resolved" for b in got), 15)
            resolved = next(b for b in got if b["status"] == "resolved")
            assert sorted(a["labels"]["severity"] for a in resolved["alerts"]) == ["page", "ticket"]
            assert all(a["endsAt"] != "0001-01-01T00:00:00Z" for a in resolved["alerts"])
            assert not any(
                b["status"] == "firing" and any(a["labels"]["severity"] == "ticket" for a in b["alerts"]) for b in got
            )
            await wait_for(lambda: service.list_incidents()[0].status == "resolved", 10)
            events = service.timeline(incident.id)
            alert_events = [e.text for e in events if e.kind.startswith("alert_")]
            assert len(alert_events) == 2 and all("severity=page" in t for t in alert_events)
        finally:
            await router.aclose()
            await runner.cleanup()
            store.close()

    asyncio.run(main())
