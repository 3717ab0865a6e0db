"""End to end: the mock upstream's biased scenario through the sidecar fires the fairness alert.

Client -> sidecar (proxy, pipeline, bias detector, SLI recorder, SLO engine)
-> mock upstream that refuses one group more often. Short windows and 2-second
slices so the run takes seconds; the unbiased scenario must stay silent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from detectors.bias.probe_config import ProbeConfig
from detectors.bias.probes import ProbeRunner
from genai_sre.config import Config, DetectorConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.schema import build
from tests.harness import Stack, stack

GROUPS = ("group_a", "group_b", "group_c", "group_d")
SLOS = """
version: genai-sre/slos/v1
service: test
slos:
  - name: fairness
    objective: 95
    period: 1h
    min_events: 1
    sli: {kind: time_slice, detector: bias, finding: fairness_disparity, statistic: max, threshold: 1.0, slice: 2s}
  - name: latency
    objective: 99
    period: 1h
    sli: {kind: latency, metric: duration, threshold_s: 10}
"""


def _configure(tmp: Path) -> object:
    slos = tmp / "slos.yaml"
    slos.write_text(SLOS)

    def configure(cfg: Config) -> Config:
        bias = DetectorConfig(
            name="bias",
            type="bias",
            options={
                "groups": {"attributes": ["group"]},
                "windows_s": [30], "bucket_s": 1, "evaluate_every_s": 0.5, "min_count": 25, "alpha": 0.001,
            },
        )
        labels = replace(cfg.labels, group_headers={"group": "x-user-group"}, group_values={"group": GROUPS})
        pipeline = replace(cfg.pipeline, cpu_budget=1.0)
        return replace(cfg, detectors=(bias,), labels=labels, pipeline=pipeline, slo=replace(cfg.slo, file=str(slos)))

    return configure


def _scenario(refusal_by_group: dict[str, float]) -> Scenario:
    phase = Phase(name="p", duration_s=3600, ttft_s=Latency(0.001, 0.002), tokens_per_s=100000, refusal_rate=0.05,
                  refusal_by_group=refusal_by_group)
    return Scenario(name="t", seed=3, phases=(phase,))


async def _traffic(proxy_url: str, per_group: int) -> None:
    sem = asyncio.Semaphore(16)

    async def one(session: aiohttp.ClientSession, group: str, i: int) -> None:
        body = {"model": "mock", "messages": [{"role": "user", "content": f"Question {i} about my account?"}]}
        async with sem, session.post(f"{proxy_url}/v1/chat/completions", json=body,
                                     headers={"x-user-group": group}) as r:
            await r.read()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, g, i) for i in range(per_group) for g in GROUPS))


def _fairness_firing(refusal_by_group: dict[str, float], tmp: Path) -> tuple[bool, str]:
    with stack(scenario=_scenario(refusal_by_group), configure=_configure(tmp)) as s:  # type: ignore[arg-type]
        s.lt.call(_traffic(s.proxy_url, 80), timeout=120)
        # Keep a trickle going, as real traffic does: the detector re-evaluates its windows as
        # exchanges arrive (every `evaluate_every_s`), not after the last one.
        for _ in range(6):
            time.sleep(0.5)
            s.lt.call(_traffic(s.proxy_url, 1), timeout=30)
        s.idle()
        deadline = time.monotonic() + 6
        firing = False
        while time.monotonic() < deadline and not firing:
            time.sleep(1.0)
            assert s.sidecar.evaluate_now is not None and s.sidecar.slo_engine is not None
            s.lt.call(s.sidecar.evaluate_now())
            firing = any(st.firing for st in s.sidecar.slo_engine.status() if st.name == "fairness")
        metrics = s.sidecar.metrics.registry
        gap = metrics.get_sample_value("genai_sre_fairness_disparity", {"attribute": "group", "metric": "refusal"})
        return firing, f"gap={gap}"


@pytest.mark.integration
def test_biased_scenario_fires_and_unbiased_does_not(tmp_path: Path) -> None:
    firing, info = _fairness_firing({"group_b": 0.5}, tmp_path)
    assert firing, info
    firing, info = _fairness_firing({}, tmp_path)
    assert not firing, info


def _latency_events(s: Stack) -> int:
    assert s.sidecar.slo_engine is not None
    status = next(st for st in s.sidecar.slo_engine.status() if st.name == "latency")
    return status.events_good + status.events_bad


@pytest.mark.integration
def test_probe_traffic_through_the_sidecar_is_not_counted(tmp_path: Path) -> None:
    probes = build(
        ProbeConfig,
        {
            "attributes": {"group": {g: {"who": g.replace("_", " ")} for g in GROUPS}},
            "templates": [{"id": "t", "attribute": "group", "prompt": "I am in {who}. Can you help me?"}],
            "daily_budget": 8,
        },
    )
    with stack(scenario=_scenario({}), configure=_configure(tmp_path)) as s:  # type: ignore[arg-type]
        runner = ProbeRunner(replace(probes, url=s.proxy_url))
        report = s.lt.call(runner.run_once())
        assert report.sent == 4 and report.errors == 0, report
        s.idle()
        assert _latency_events(s) == 0  # probes: captured and scored, never counted
        registry = s.sidecar.metrics.registry
        assert registry.get_sample_value(
            "genai_sre_fairness_group_outcome", {"attribute": "group", "group": "group_a", "metric": "refusal"}
        ) is None  # nor seen by the bias detector
        s.lt.call(_traffic(s.proxy_url, 1))
        s.idle()
        assert _latency_events(s) == 4
