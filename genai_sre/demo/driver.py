"""Run the demo: mock upstream + sidecar on free loopback ports, a workload through the official openai client.

Nothing is scripted: the mock upstream follows its scenario phases (healthy,
inventing facts, biased refusals, outage, recovery), the sidecar scores what it
forwards, and the view shows what the detectors, SLOs, alerts and incidents
computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from genai_sre.app import Sidecar
from genai_sre.config import UpstreamConfig, load_config
from genai_sre.demo.config import DemoConfig
from genai_sre.demo.recorder import DemoRecorder
from genai_sre.mock.scenario import load_scenario
from genai_sre.mock.server import MockUpstream

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    sent: int
    answered: int
    client_errors: int
    duration_s: float
    data_dir: Path
    recorder: DemoRecorder
    sidecar: Sidecar
    mock: MockUpstream
    extra: dict[str, Any]
    started_at: float = 0.0  # wall-clock time the traffic started

    def phase_at(self, at: float) -> str:
        """The scenario phase the upstream was in at wall-clock time `at`."""
        elapsed = max(0.0, at - self.started_at) * self.mock.speed * self.mock.phase_scale
        return self.mock.scenario.phase_at(elapsed).name


def _workload(path: Path) -> list[dict[str, str]]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not items:
        raise ValueError(f"{path}: the workload is empty")
    return items


async def run_demo(cfg: DemoConfig, duration_s: float, data_dir: Path, view: Any | None = None) -> DemoResult:
    import openai

    from genai_sre.wiring import wire

    scenario = load_scenario(cfg.path(cfg.scenario))
    total = sum(p.duration_s for p in scenario.phases)
    mock = MockUpstream(scenario, phase_scale=total / duration_s)
    runner = web.AppRunner(mock.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    mock_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    sc_cfg = load_config(cfg.path(cfg.sidecar))
    up = sc_cfg.upstreams[0] if sc_cfg.upstreams else UpstreamConfig(name="mock", url="http://127.0.0.1")
    upstreams = [replace(up, url=f"http://127.0.0.1:{mock_port}")]
    backup_runner = None
    if up.fallback is not None:  # self-healing: a second simulated upstream takes the traffic while failed over
        backup = MockUpstream(load_scenario(cfg.path(cfg.backup_scenario)))
        backup_runner = web.AppRunner(backup.app(), access_log=None)
        await backup_runner.setup()
        backup_site = web.TCPSite(backup_runner, "127.0.0.1", 0)
        await backup_site.start()
        backup_port = backup_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fallback = next(u for u in sc_cfg.upstreams if u.name == up.fallback.upstream)
        upstreams.append(replace(fallback, url=f"http://127.0.0.1:{backup_port}"))
    sc_cfg = replace(
        sc_cfg,
        upstreams=tuple(upstreams),
        proxy=replace(sc_cfg.proxy, host="127.0.0.1", port=0),
        admin=replace(sc_cfg.admin, host="127.0.0.1", port=0),
        storage=replace(sc_cfg.storage, data_dir=str(data_dir.resolve())),
    )
    sidecar = Sidecar(sc_cfg)
    await wire(sidecar.agent)
    recorder = DemoRecorder()
    sidecar.sinks.append(recorder)
    await sidecar.start()

    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{sidecar.proxy_port}/v1",
        api_key="sk-demo-not-a-real-key",
        max_retries=0,
        timeout=30,
    )
    workload = _workload(cfg.path(cfg.workload))
    rng = random.Random(cfg.seed)
    sem = asyncio.Semaphore(cfg.concurrency)
    counts = {"sent": 0, "answered": 0, "errors": 0}
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: dict[str, str], group: str, user: str, stream: bool) -> None:
        async with sem:
            counts["sent"] += 1
            messages: Any = [
                {"role": "system", "content": f"Answer only from these documents.\n\n{item['context']}"},
                {"role": "user", "content": item["question"]},
            ]
            headers = {cfg.group_header: group, "x-tenant": "demo"}
            try:
                if stream:
                    chunks = await client.chat.completions.create(
                        model="demo-llm",
                        messages=messages,
                        stream=True,
                        stream_options={"include_usage": True},
                        safety_identifier=user,
                        extra_headers=headers,
                    )
                    async for _ in chunks:
                        pass
                else:
                    await client.chat.completions.create(
                        model="demo-llm", messages=messages, safety_identifier=user, extra_headers=headers
                    )
                counts["answered"] += 1
            except (openai.APIError, openai.APIConnectionError):
                counts["errors"] += 1

    mock.started = mock.clock()  # the scenario's phases start with the traffic, not with the sidecar's startup
    started = time.monotonic()
    started_wall = time.time()
    next_at = started
    try:
        with contextlib.ExitStack() as stack:
            if view is not None:
                stack.enter_context(view.live(sidecar, recorder, mock, started, duration_s, counts))
            while (now := time.monotonic()) - started < duration_s:
                if now >= next_at:
                    item = rng.choice(workload)
                    group = rng.choice(cfg.groups)
                    user = f"{group}-user-{rng.randrange(max(1, cfg.users_per_group))}"
                    task = asyncio.create_task(one(item, group, user, rng.random() < cfg.stream_share))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    next_at += rng.expovariate(cfg.rate_per_s)
                if view is not None:
                    view.refresh()
                await asyncio.sleep(max(0.0, min(0.05, next_at - time.monotonic())))
            await asyncio.gather(*tasks, return_exceptions=True)
            await sidecar.pipeline.wait_idle()
            await _settle(sidecar)
            if view is not None:
                view.refresh()
    finally:
        extra = await _finish(sidecar)
        await client.close()
        await sidecar.stop(grace_s=1.0)
        await runner.cleanup()
        if backup_runner is not None:
            await backup_runner.cleanup()
    return DemoResult(
        counts["sent"],
        counts["answered"],
        counts["errors"],
        time.monotonic() - started,
        data_dir,
        recorder,
        sidecar,
        mock,
        extra,
        started_wall,
    )


async def _settle(sidecar: Sidecar) -> None:
    """Give stages that evaluate on a timer (SLOs, alerting) one more turn before the summary."""
    if sidecar.evaluate_now is not None:
        await sidecar.evaluate_now()
    if sidecar.alerting is not None and sidecar.alerting.router is not None:
        await asyncio.sleep(1.5)  # the demo routing waits 1 s before a group's first notification
        await sidecar.alerting.router.flush()


async def _finish(sidecar: Sidecar) -> dict[str, Any]:
    """Fail-overs, incidents the run opened, and a postmortem draft for the first one."""
    out: dict[str, Any] = {}
    if sidecar.failover is not None:
        for i, m in enumerate(sidecar.failover.recent):
            out[f"mitigation {i + 1}"] = f"{time.strftime('%H:%M:%S', time.localtime(m.at))} {m.text}"
    stack = sidecar.alerting
    if stack is None or stack.service is None:
        return out
    from genai_sre.incidents.postmortem import write_postmortem

    incidents = stack.service.list_incidents()
    out["incidents opened"] = len(incidents)
    for inc in incidents[:3]:
        out[f"incident {inc.id}"] = f"{inc.severity} {inc.status}: {inc.title}"
    if incidents:
        first = sorted(incidents, key=lambda i: i.opened_at)[0]
        path = write_postmortem(stack.service, first.id, evidence=sidecar.postmortem_evidence)  # type: ignore[arg-type]
        out["postmortem draft"] = str(path)
    return out
