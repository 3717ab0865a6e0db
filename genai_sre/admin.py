"""The admin port: `/metrics`, `/healthz`, `/readyz`, and the admin API mounted by other stages.

`/readyz` means one thing: this sidecar can forward traffic (listening and not
draining). A monitoring problem (a DNS blip for the upstream, a stalled
pipeline, a full queue) must not take the application's pod out of its
Service, so it is reported on `/healthz` (detail) and in metrics instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["build_admin_app"]


def build_admin_app(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    health: Callable[[], Mapping[str, object]] = dict,
    refresh: Callable[[], None] | None = None,
    extra_routes: Sequence[web.RouteDef] = (),
    readiness: Sequence[Callable[[], Awaitable[str | None]]] = (),
) -> web.Application:
    """`readiness`: the checks of `/readyz/incidents` (an incidents primary can take webhooks: its store
    answers), each returning None or the problem. `/readyz` itself only says whether traffic can be forwarded."""
    async def metrics(_: web.Request) -> web.Response:
        if refresh is not None:
            refresh()  # on the event loop: the proxy's counters as of now
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "problems": ["not accepting traffic (draining)"]}, status=503)

    async def readyz_incidents(_: web.Request) -> web.Response:
        problems: list[str] = []
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
    app.router.add_get("/readyz/incidents", readyz_incidents)
    app.add_routes(list(extra_routes))
    return app
