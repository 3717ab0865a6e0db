"""The admin API over a real loopback server: tokens and scopes, incidents, annotations, silences."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from genai_sre.alerting.config import AlertingConfig, DeliveryConfig
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.router import AlertRouter
from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.config import AdminConfig
from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import open_store
from tests.alerting.helpers import FakeClock, alert
from tests.servers import free_port

WRITE, READ = "w-token", "r-token"


async def serve(tmp_path: Path, store_url: str = "") -> tuple[str, web.AppRunner, IncidentService, AlertRouter]:
    clock = FakeClock()
    service = IncidentService(open_store(store_url, tmp_path), clock)
    silences = Silences(clock, backend=StoreSilences(service.store))
    router = AlertRouter(
        AlertingConfig(delivery=DeliveryConfig(log_file=None), silences_file=None), {}, clock=clock, silences=silences
    )
    auth = AdminAuth.from_env(AdminConfig(), {"GENAI_SRE_ADMIN_TOKEN": WRITE, "GENAI_SRE_ADMIN_READ_TOKEN": READ})
    app = web.Application()
    app.add_routes(admin_routes(service, silences, auth))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}", runner, service, router


async def call(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=body, headers=headers) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, (await r.json()) if "json" in ctype else await r.text()


@pytest.mark.integration
def test_tokens_and_scopes(tmp_path: Path) -> None:
    async def main() -> None:
        base, runner, service, _ = await serve(tmp_path)
        try:
            for method, path in [
                ("GET", "/admin/incidents"),
                ("POST", "/admin/alertmanager"),
                ("GET", "/admin/silences"),
                ("POST", "/admin/annotations"),
            ]:
                assert (await call(method, base + path, None))[0] == 401
                assert (await call(method, base + path, "wrong"))[0] == 401
                assert (await call(method, base + path, WRITE[:-1]))[0] == 401
            async with aiohttp.ClientSession() as s:
                async with s.get(base + "/admin/incidents", headers={"Authorization": WRITE}) as r:
                    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await call("GET", base + "/admin/incidents", READ))[0] == 200
            assert (await call("POST", base + "/admin/annotations", READ, {"kind": "deploy"}))[0] == 403
            assert (await call("POST", base + "/admin/alertmanager", READ, {}))[0] == 403
            assert (await call("DELETE", base + "/admin/silences/x", READ))[0] == 403
        finally:
            await runner.cleanup()
            service.store.close()

    asyncio.run(main())


def test_no_token_configured_refuses_everything() -> None:
    auth = AdminAuth(None, None)
    assert auth.scope("Bearer ") is None and auth.scope("Bearer anything") is None and auth.scope(None) is None


@pytest.mark.integration
def test_incident_endpoints(tmp_path: Path, store_url: str) -> None:
    async def main() -> None:
        base, runner, service, router = await serve(tmp_path, store_url)
        try:
            n = Notification("r", '{}:{slo="chat"}', "firing", {"slo": "chat"}, (alert(starts_at=1.8e9),), 1.8e9)
            status, body = await call("POST", base + "/admin/alertmanager", WRITE, n.to_webhook())
            assert status == 200 and body == {"incident_id": "1", "duplicate": False}
            status, body = await call("POST", base + "/admin/alertmanager", WRITE, n.to_webhook())
            assert body["duplicate"] is True
            assert (await call("POST", base + "/admin/alertmanager", WRITE, {"version": "3"}))[0] == 400

            status, body = await call("GET", base + "/admin/incidents?status=open", READ)
            assert [i["id"] for i in body["incidents"]] == ["1"]
            assert (await call("POST", base + "/admin/incidents/1/ack", WRITE, {"text": "on it"}))[1]["status"] == (
                "acknowledged"
            )
            assert (
                await call(
                    "POST", base + "/admin/incidents/1/notes", WRITE, {"text": "rolled back", "kind": "mitigation"}
                )
            )[0] == 201
            assert (await call("POST", base + "/admin/incidents/1/notes", WRITE, {"text": "x", "kind": "blame"}))[
                0
            ] == 400
            ann = {"kind": "deploy", "labels": {"model": "gpt-x", "version": "7"}}
            assert (await call("POST", base + "/admin/annotations", WRITE, ann))[0] == 201
            assert (await call("POST", base + "/admin/incidents/1/resolve", WRITE))[1]["status"] == "resolved"
            status, detail = await call("GET", base + "/admin/incidents/1", READ)
            kinds = [e["kind"] for e in detail["timeline"]]
            assert {"opened", "acknowledged", "mitigation", "deploy", "resolved"} <= set(kinds)
            assert detail["figures"]["time_to_ack_s"] == 0.0
            status, text = await call("GET", base + "/admin/incidents/1/postmortem", READ)
            assert status == 200 and text.startswith("# Postmortem:")
            assert (await call("GET", base + "/admin/incidents/99", READ))[0] == 404
            assert (await call("GET", base + "/admin/incidents/abc", READ))[0] == 404

            status, sil = await call(
                "POST",
                base + "/admin/silences",
                WRITE,
                {"matchers": ['slo="chat"'], "duration_s": 600, "comment": "maintenance"},
            )
            assert status == 201 and router.silences.silenced_by({"slo": "chat"}) == sil["id"]
            assert (await call("POST", base + "/admin/silences", WRITE, {"matchers": ["bad"], "duration_s": 1}))[
                0
            ] == 400
            assert [s["id"] for s in (await call("GET", base + "/admin/silences", READ))[1]["silences"]] == [sil["id"]]
            assert (await call("DELETE", base + f"/admin/silences/{sil['id']}", WRITE))[0] == 200
            assert (await call("DELETE", base + f"/admin/silences/{sil['id']}", WRITE))[0] == 404
            assert router.silences.silenced_by({"slo": "chat"}) is None
        finally:
            await runner.cleanup()
            service.store.close()

    asyncio.run(main())


@pytest.mark.integration
def test_postmortem_reads_slo_figures_on_the_event_loop(tmp_path: Path) -> None:
    import threading

    from tests.incidents.test_lifecycle import Evidence

    class Recording(Evidence):
        threads: list[int] = []

        def slo_figures(self, slo: str, start: float, end: float) -> dict[str, Any]:
            self.threads.append(threading.get_ident())
            return super().slo_figures(slo, start, end)

    async def main() -> None:
        clock = FakeClock()
        service = IncidentService(open_store("", tmp_path), clock)
        n = Notification("r", '{}:{slo="chat"}', "firing", {"slo": "chat"}, (alert(starts_at=1.8e9),), 1.8e9)
        service.record(n)
        app = web.Application()
        app.add_routes(admin_routes(service, None, AdminAuth(WRITE), Recording()))
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            status, text = await call("GET", f"http://127.0.0.1:{port}/admin/incidents/1/postmortem", WRITE)
            assert status == 200 and "310 of 1,200" in text  # the figures reached the draft
            assert Recording.threads == [threading.get_ident()]  # read on the loop's thread
        finally:
            await runner.cleanup()
            service.store.close()

    asyncio.run(main())
