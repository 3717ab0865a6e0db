"""Detectors that raise, hang or are slow; sampling and budgets; a full queue. Clients never notice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace

import httpx
import pytest

from genai_sre import BaseDetector, Exchange, Finding
from genai_sre.config import DetectorConfig
from genai_sre.detection.runner import DetectorRunner, DetectorSlot
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.telemetry.metrics import Metrics
from tests.factories import exchange
from tests.harness import stack

FAST = Scenario(phases=(Phase(name="fast", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000),))


class Raising(BaseDetector):
    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        raise RuntimeError("boom")


class Hanging(BaseDetector):
    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        await asyncio.sleep(3600)
        return []


class Slow(BaseDetector):
    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        await asyncio.sleep(self.delay_s)
        return [Finding(name="slow_check", score=0.1, label="pass")]


def test_failures_are_isolated_and_counted() -> None:
    metrics = Metrics()
    runner = DetectorRunner(
        [
            DetectorSlot("bad", Raising()),
            DetectorSlot("stuck", Hanging(), timeout_s=0.05),
            DetectorSlot("ok", Slow(0.0)),
        ],
        metrics,
    )
    ev = asyncio.run(runner.evaluate(exchange(id="e0")))
    assert ev.outcomes == {"bad": "failed", "stuck": "timeout", "ok": "scored"}
    assert [(f.detector, f.name, f.exchange_id) for f in ev.findings] == [("ok", "slow_check", "e0")]
    assert not ev.scored_by("bad") and ev.scored_by("ok")
    runs = metrics.counter("genai_sre_detector_runs")
    assert runs.labels("bad", "failed")._value.get() == 1
    assert runs.labels("stuck", "timeout")._value.get() == 1


def test_sampling_scores_about_the_configured_share() -> None:
    runner = DetectorRunner([DetectorSlot("s", Slow(0.0), sample_rate=0.25)], rng=random.Random(1))

    async def go() -> None:
        for i in range(400):
            await runner.evaluate(exchange(id=f"e{i}"))

    asyncio.run(go())
    scored = runner.counts.get(("s", "scored"), 0)
    assert 70 < scored < 130
    assert runner.counts[("s", "sampled_out")] == 400 - scored
    assert abs(runner.scored_share("s") - scored / 400) < 1e-9


def test_cpu_budget_limits_an_expensive_detector() -> None:
    clock_t = [0.0]

    class Costly(BaseDetector):
        async def detect(self, exchange: Exchange) -> Sequence[Finding]:
            clock_t[0] += 0.1  # each run "costs" 100 ms
            return []

    runner = DetectorRunner([DetectorSlot("c", Costly(), cpu_budget=0.1)], clock=lambda: clock_t[0])

    async def go() -> None:
        for i in range(100):
            clock_t[0] += 0.01  # 100 exchanges a second
            await runner.evaluate(exchange(id=f"e{i}"))

    asyncio.run(go())
    scored = runner.counts.get(("c", "scored"), 0)
    # a tenth of a core for 100 ms runs over ~1.1 s of wall time: about 10 runs plus the 1 s burst
    assert 5 <= scored <= 25, scored
    assert runner.counts[("c", "over_budget")] == 100 - scored


@pytest.mark.integration
def test_broken_detectors_and_full_queue_never_change_responses() -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        dets = (
            DetectorConfig(name="bad", type="tests.detection.test_runner:Raising"),
            DetectorConfig(name="stuck", type="tests.detection.test_runner:Hanging", timeout_s=0.05),
            DetectorConfig(name="slow", type="tests.detection.test_runner:Slow", options={"delay_s": 0.2}),
        )
        return replace(c, detectors=dets, pipeline=replace(c.pipeline, queue_size=2, batch_size=1))

    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Water boils at 100 degrees. When does water boil?"}],
    }
    with stack(FAST, configure=cfg) as s:
        direct = httpx.post(s.mock_url + "/v1/chat/completions", json=body).json()
        for _ in range(20):
            r = httpx.post(s.proxy_url + "/v1/chat/completions", json=body)
            assert r.status_code == 200
            assert r.json()["choices"] == direct["choices"]
        s.idle()
        metrics = httpx.get(s.admin_url + "/metrics").text
        pipeline = s.sidecar.pipeline
        assert s.sidecar.queue.dropped > 0
        assert pipeline.processed + s.sidecar.queue.dropped == 20
    assert f'genai_sre_pipeline_dropped_total{{reason="queue_full"}} {float(s.sidecar.queue.dropped)}' in metrics
    assert 'genai_sre_detector_runs_total{detector="bad",outcome="failed"}' in metrics
    assert 'genai_sre_detector_runs_total{detector="stuck",outcome="timeout"}' in metrics
    assert 'genai_sre_detector_scored_ratio{detector="slow"} 1.0' in metrics


class NotFindings(BaseDetector):
    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        return ["not a finding"]  # type: ignore[list-item]


def test_a_detector_returning_garbage_fails_alone() -> None:
    runner = DetectorRunner([DetectorSlot("junk", NotFindings()), DetectorSlot("ok", Slow(0.0))])
    ev = asyncio.run(runner.evaluate(exchange(id="e0")))
    assert ev.outcomes == {"junk": "failed", "ok": "scored"} and len(ev.findings) == 1
