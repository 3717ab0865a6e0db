"""Run the mock upstream and a sidecar on loopback in a background event loop, for sync tests."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from aiohttp import web

from genai_sre.app import Sidecar
from genai_sre.config import Config, UpstreamConfig, load_config
from genai_sre.mock.scenario import Scenario
from genai_sre.mock.server import MockUpstream

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; `call(coro)` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def start_app(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server: Any = site._server
    return runner, int(server.sockets[0].getsockname()[1])


class Stack:
    def __init__(self, lt: LoopThread, mock: MockUpstream | None, mock_url: str, sidecar: Sidecar) -> None:
        self.lt = lt
        self.mock = mock
        self.mock_url = mock_url
        self.sidecar = sidecar

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.admin_port}"

    def idle(self) -> None:
        self.lt.call(self.sidecar.pipeline.wait_idle())


def test_config(upstream_url: str, **sections: Any) -> Config:
    base = load_config(None, environ={})
    cfg = replace(
        base,
        upstreams=(UpstreamConfig(name="mock", url=upstream_url, read_timeout_s=5.0, connect_timeout_s=2.0),),
        proxy=replace(base.proxy, port=0),
        admin=replace(base.admin, port=0),
        detectors=(),  # the bundled SLOs and alert routes, without the bundled detectors unless a test adds them
    )
    return replace(cfg, **sections) if sections else cfg


@contextmanager
def stack(
    scenario: Scenario | None = None,
    upstream_app: web.Application | None = None,
    configure: Callable[[Config], Config] | None = None,
    wire: Callable[[Sidecar], Awaitable[None]] | None = None,
    wire_stages: bool = True,
) -> Iterator[Stack]:
    lt = LoopThread()
    mock = None
    runners: list[web.AppRunner] = []
    try:
        if upstream_app is None:
            mock = MockUpstream(scenario or Scenario())
            upstream_app = mock.app()
        runner, port = lt.call(start_app(upstream_app))
        runners.append(runner)
        url = f"http://127.0.0.1:{port}"
        cfg = test_config(url)
        cfg = replace(cfg, storage=replace(cfg.storage, data_dir=tempfile.mkdtemp(prefix="genai-sre-test-")))
        if configure is not None:
            cfg = configure(cfg)

        async def make() -> Sidecar:
            sc = Sidecar(cfg)
            if wire_stages:
                from genai_sre.wiring import wire as wire_all

                await wire_all(sc.agent)
            if wire is not None:
                await wire(sc)
            await sc.start()
            return sc

        sidecar = lt.call(make())
        try:
            yield Stack(lt, mock, url, sidecar)
        finally:
            lt.call(sidecar.stop(grace_s=0.3))
    finally:
        for r in runners:
            lt.call(r.cleanup())
        lt.stop()
