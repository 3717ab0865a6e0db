from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiohttp import web

from tests.harness import LoopThread, start_app

pytestmark = pytest.mark.integration


@pytest.fixture
def serve_app() -> Iterator[Callable[[web.Application], str]]:
    """Start aiohttp apps on loopback in a background loop; returns their base URLs."""
    lt = LoopThread()
    runners: list[web.AppRunner] = []

    def start(app: web.Application) -> str:
        runner, port = lt.call(start_app(app))
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for r in runners:
            lt.call(r.cleanup())
        lt.stop()
