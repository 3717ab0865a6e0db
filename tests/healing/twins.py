"""Two simulated upstreams behind one in-process sidecar: a primary that can be switched, and a backup."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from genai_sre.config import Config, FallbackConfig, UpstreamConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.mock.server import MockUpstream
from tests.harness import LoopThread, Stack, stack, start_app

FAST = Latency(median=0.002, p99=0.005)
PRIMARY = Scenario(
    name="primary",
    loop=False,
    phases=(
        Phase("healthy", duration_s=3600, ttft_s=FAST, tokens_per_s=5000),
        Phase("down", duration_s=3600, ttft_s=FAST, error_rate=1.0, error_status=503),
        Phase("inventing", duration_s=3600, ttft_s=FAST, tokens_per_s=5000, invent_rate=1.0),
    ),
)
BACKUP = Scenario(name="backup", phases=(Phase("healthy", duration_s=3600, ttft_s=FAST, tokens_per_s=5000),))
CONTEXT = (
    "Answer only from these documents.\n\nThe Treaty of Westphalia was signed in 1648 in Osnabrück and Münster. "
    "It ended the Thirty Years' War."
)


@dataclass
class Twins:
    stack: Stack
    primary: MockUpstream
    backup: MockUpstream

    def set_primary(self, phase: str) -> None:
        self.primary.pinned = phase

    @property
    def sidecar(self) -> Any:
        return self.stack.sidecar

    def chat(self, client: httpx.Client, stream: bool = False, model: str = "gpt-test") -> httpx.Response:
        body = {
            "model": model,
            "stream": stream,
            "messages": [
                {"role": "system", "content": CONTEXT},
                {"role": "user", "content": "When was the Treaty of Westphalia signed?"},
            ],
        }
        return client.post(f"{self.stack.proxy_url}/v1/chat/completions", content=json.dumps(body),
                           headers={"content-type": "application/json", "authorization": "Bearer sk-test"})

    def mitigations(self, at_least: int, timeout_s: float = 10.0) -> list[Any]:
        """The stored `mitigation` annotations, once there are `at_least` (they are written off the loop)."""
        service = self.sidecar.alerting.service
        assert service is not None
        deadline = time.monotonic() + timeout_s
        while True:
            found = service.store.annotations(kind="mitigation")
            if len(found) >= at_least or time.monotonic() > deadline:
                return list(found)
            time.sleep(0.02)

    def proxy_counters(self) -> Any:
        self.stack.lt.call(_refresh(self.sidecar))
        return self.sidecar.intake.merged()


async def _refresh(sidecar: Any) -> None:
    sidecar.refresh_stats()


@contextmanager
def twins(
    fallback: FallbackConfig | None,
    configure: Callable[[Config], Config] | None = None,
) -> Iterator[Twins]:
    """A sidecar whose upstream `primary` (switchable, starts healthy) falls back to `backup` (always healthy)."""
    backup_lt = LoopThread()
    backup = MockUpstream(BACKUP)
    runner, port = backup_lt.call(start_app(backup.app()))
    primary = MockUpstream(PRIMARY)
    primary.pinned = "healthy"

    def setup(cfg: Config) -> Config:
        first = replace(cfg.upstreams[0], name="primary", fallback=fallback)
        second = UpstreamConfig(name="backup", url=f"http://127.0.0.1:{port}", read_timeout_s=5.0,
                                connect_timeout_s=2.0)
        cfg = replace(cfg, upstreams=(first, second))
        return configure(cfg) if configure is not None else cfg

    try:
        with stack(upstream_app=primary.app(), configure=setup) as st:
            yield Twins(st, primary, backup)
    finally:
        backup_lt.call(runner.cleanup())
        backup_lt.stop()
