"""Shared test helpers: a settable clock, a recording receiver, alert factories, a local HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from genai_sre.alerting.notification import Notification
from genai_sre.events import Alert
from tests.servers import free_port


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class RecordingReceiver:
    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.got.append(notification)


def alert(slo: str = "chat-availability", severity: str = "page", status: str = "firing", **extra: Any) -> Alert:
    labels = {"alertname": "SLOBurnRate", "slo": slo, "severity": severity}
    annotations = {"summary": f"{slo} burning ({severity})", "burn_rate": "14.4", "budget_remaining": "0.8"}
    annotations.update({k: str(v) for k, v in extra.pop("annotations", {}).items()})
    labels.update({k: str(v) for k, v in extra.pop("labels", {}).items()})
    return Alert(labels=labels, annotations=annotations, status=status, **extra)  # type: ignore[arg-type]


@dataclass
class Capture:
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@asynccontextmanager
async def http_server(
    statuses: Callable[[int], int] = lambda n: 200, body: str = "ok", path: str = "/hook"
) -> AsyncIterator[tuple[str, Capture]]:
    """A loopback server recording JSON POSTs; `statuses(n)` picks the status of the n-th request (0-based)."""
    cap = Capture()

    async def handle(request: web.Request) -> web.Response:
        cap.bodies.append(json.loads(await request.read()))
        cap.headers.append(dict(request.headers))
        status = statuses(len(cap.bodies) - 1)
        cap.statuses.append(status)
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}{path}", cap
    finally:
        await runner.cleanup()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
