"""The admin port: `/metrics`, `/healthz`, `/readyz`, and the admin API mounted by other stages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["build_admin_app"]


def build_admin_app(
    registry: CollectorRegistry,
    upstream_urls: Sequence[str],
    pipeline_running: Callable[[], bool],
    extra_routes: Sequence[web.RouteDef] = (),
    readiness: Sequence[Callable[[], Awaitable[str | None]]] = (),
) -> web.Application:
    """`readiness`: more checks for `/readyz`, each returning None or the problem (e.g. the incident store)."""
    async def metrics(_: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems: list[str] = []
        if not pipeline_running():
            problems.append("pipeline not running")
        loop = asyncio.get_running_loop()
        for url in upstream_urls:
            host = urlsplit(url).hostname or ""
            try:
                await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), 2.0)
            except (TimeoutError, OSError):
                problems.append(f"upstream host {host!r} does not resolve")
        for check in readiness:
            try:
                problem = await asyncio.wait_for(check(), 3.0)
            except TimeoutError:
                problem = "a readiness check timed out"
            if problem:
                problems.append(problem)
        status = 200 if not problems else 503
        return web.json_response(
            {"status": "ready" if not problems else "not ready", "problems": problems}, status=status
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.add_routes(list(extra_routes))
    return app
