"""A primary's `/readyz/incidents` follows its incident store (503 naming it when the store is down), while
`/readyz` (can forward) stays 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from genai_sre.admin import build_admin_app
from genai_sre.config import load_config
from genai_sre.incidents.stack import build_alerting
from tests.pg import postgres_server
from tests.servers import free_port


def test_readyz_follows_the_postgres_store(tmp_path: Path) -> None:
    with postgres_server() as pg:
        cfg = tmp_path / "sidecar.yaml"
        cfg.write_text(
            f"storage: {{data_dir: {tmp_path}}}\nalerting: {{file: null}}\n"
            f"incidents: {{role: primary, store_url: '{pg.create_database('ready')}'}}\n"
        )
        stack = build_alerting(load_config(cfg), environ={})

        async def main() -> list[tuple[int, dict[str, object]]]:
            app = build_admin_app(
                CollectorRegistry(), ready=lambda: True, extra_routes=stack.routes, readiness=[stack.ready]
            )
            runner = web.AppRunner(app)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            seen = []
            try:
                async with aiohttp.ClientSession() as s:
                    for step in ("up", "down", "up again"):
                        if step == "down":
                            await asyncio.to_thread(pg.stop)
                        if step == "up again":
                            await asyncio.to_thread(pg.start)
                        for _ in range(50):  # the pool replaces broken connections within a few seconds
                            async with s.get(f"http://127.0.0.1:{port}/readyz/incidents") as r:
                                answer = (r.status, await r.json())
                            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                                assert r.status == 200  # forwarding does not depend on the database
                            if answer[0] == (503 if step == "down" else 200):
                                break
                            await asyncio.sleep(0.2)
                        seen.append(answer)
            finally:
                await runner.cleanup()
                await stack.aclose()
            return seen

        up, down, again = asyncio.run(main())
    assert up == (200, {"status": "ready", "problems": []})
    assert down[0] == 503 and "incident store unavailable" in str(down[1]["problems"])
    assert again[0] == 200
