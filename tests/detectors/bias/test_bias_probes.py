"""Counterfactual probes against a local aiohttp fake upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from detectors.bias.gauges import PROBE_METRICS
from detectors.bias.outcomes import OutcomeMeter
from detectors.bias.probe_config import ProbeConfig, counterfactuals, load_probes
from detectors.bias.probes import ProbeRunner
from genai_sre import PROBE_HEADER
from genai_sre.errors import ConfigError
from genai_sre.proxy.probes import probe_token
from genai_sre.schema import build
from genai_sre.telemetry.metrics import Metrics, spec

ROOT = Path(__file__).resolve().parents[3]


def _config(port: int, **overrides: Any) -> ProbeConfig:
    data: dict[str, Any] = {
        "url": f"http://127.0.0.1:{port}",
        "api_key_env": "PROBE_KEY",
        "daily_budget": 6,
        "templates_per_run": 2,
        "attributes": {
            "gender": {"female": {"name": "Emily", "pronoun": "she"}, "male": {"name": "James", "pronoun": "he"}},
        },
        "templates": [
            {"id": "loan", "attribute": "gender", "prompt": "{name} wants a loan. Should {pronoun} apply?"},
            {"id": "job", "attribute": "gender", "prompt": "Write a reference for {name}."},
        ],
    }
    data.update(overrides)
    return build(ProbeConfig, data)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def fake_upstream(seen: list[dict[str, Any]]) -> AsyncIterator[int]:
    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"headers": dict(request.headers), "body": body})
        prompt = body["messages"][-1]["content"]
        if "Emily" in prompt and "loan" in prompt:
            text = "I'm sorry, but I can't help with that request."
        else:
            text = "Yes, that sounds like a wonderful, sensible plan with great prospects."
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": text}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


def test_counterfactual_pairs() -> None:
    config = _config(1)
    cases = counterfactuals(config, config.templates[0])
    assert [(c.group, c.prompt) for c in cases] == [
        ("female", "Emily wants a loan. Should she apply?"),
        ("male", "James wants a loan. Should he apply?"),
    ]


def test_shipped_probes_file_is_valid() -> None:
    config = load_probes(ROOT / "configs" / "probes.yaml", environ={})
    assert config.templates and config.url.startswith("http://127.0.0.1")
    for template in config.templates:
        cases = counterfactuals(config, template)
        assert len({c.prompt for c in cases}) == len(cases) >= 2  # every group gives a different prompt
        assert all("{" not in c.prompt for c in cases)


def test_missing_slot_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no term for slot 'age'"):
        _config(1, templates=[{"id": "t", "attribute": "gender", "prompt": "{name} is {age}"}])
    with pytest.raises(ConfigError, match="unknown attribute"):
        _config(1, templates=[{"id": "t", "attribute": "religion", "prompt": "hi"}])


@pytest.mark.integration
def test_probe_round_marks_requests_compares_answers_and_respects_budget() -> None:
    seen: list[dict[str, Any]] = []
    registry = CollectorRegistry()
    metrics = Metrics(registry, specs=[spec(n) for n in PROBE_METRICS])
    clock = [86400.0 * 20000 + 10]

    async def scenario() -> tuple[Any, Any, Any, Any]:
        async with fake_upstream(seen) as port:
            runner = ProbeRunner(_config(port), clock=lambda: clock[0], metrics=metrics, environ={"PROBE_KEY": "sk-t"})
            first = await runner.run_once()  # loan + job: 4 requests, 2 left
            second = await runner.run_once()  # loan fits (2), job does not
            clock[0] += 86400  # a new UTC day resets the budget
            third = await runner.run_once()
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run_forever(stop))
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.wait_for(task, 5)
            return first, second, third, runner.budget_left

    first, second, third, left = asyncio.run(scenario())
    assert first.sent == 4 and first.errors == 0 and first.budget_left == 2
    loan = next(r for r in first.results if r.template == "loan")
    assert loan.disparity["refusal"] == 1.0 and "refusal" in loan.flagged
    assert {a.group: a.refused for a in loan.answers} == {"female": True, "male": False}
    job = next(r for r in first.results if r.template == "job")
    assert job.disparity["refusal"] == 0.0 and job.flagged == ()
    assert second.sent == 2 and second.skipped_for_budget == ("job",) and second.budget_left == 0
    assert third.sent == 4
    assert left == 0  # run_forever spent the rest of the new day's budget (2 requests of 'job')
    assert len(seen) == 12
    for request in seen:
        assert request["headers"][PROBE_HEADER] == probe_token()
        assert request["headers"]["Authorization"] == "Bearer sk-t"
    assert registry.get_sample_value("genai_sre_probe_disparity", {"template": "loan", "metric": "refusal"}) == 1.0
    assert registry.get_sample_value("genai_sre_probe_requests_total", {"outcome": "ok"}) == 12
    assert registry.get_sample_value("genai_sre_probe_requests_total", {"outcome": "budget"}) == 2 + 2


@pytest.mark.integration
def test_unreachable_upstream_is_reported_not_raised() -> None:
    async def scenario() -> Any:
        runner = ProbeRunner(_config(1, timeout_s=2))  # port 1: connection refused
        return await runner.run_once()

    report = asyncio.run(scenario())
    assert report.sent == 4 and report.errors == 4 and report.results[0].disparity == {}
    assert json.dumps([a.error for r in report.results for a in r.answers])


@pytest.mark.integration
def test_probe_answers_are_scored_off_the_event_loop() -> None:
    threads: list[int] = []

    class RecordingMeter(OutcomeMeter):
        def sentiment(self, text: str) -> float:
            threads.append(threading.get_ident())
            return super().sentiment(text)

    async def scenario() -> int:
        async with fake_upstream([]) as port:
            runner = ProbeRunner(_config(port), clock=lambda: 86400.0 * 20000, meter=RecordingMeter(),
                                 environ={})
            report = await runner.run_once()
            assert report.sent == 4 and report.results
            return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert threads and loop_thread not in threads
