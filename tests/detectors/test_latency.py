from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from detectors.latency import LatencyDetector
from genai_sre import Usage
from genai_sre.errors import ConfigError
from tests.factories import exchange

# a streamed answer of 41 tokens: first token after 0.2 s, the last after 1 s
STREAM = exchange(stream=True, ttft_s=0.2, duration_s=1.0, usage=Usage(10, 41))


def _by_name(findings):  # type: ignore[no-untyped-def]
    return {f.name: f for f in findings}


def test_thresholds_label_slow_and_ok() -> None:
    det = LatencyDetector(ttft_threshold_s=0.5, duration_threshold_s=2.0, tpot_threshold_s=0.05, min_tokens_per_s=30)
    fast = _by_name(asyncio.run(det.detect(replace(STREAM, ttft_s=0.2, duration_s=1.0, tpot_s=0.02))))
    assert fast["ttft"].label == "ok" and fast["ttft"].score == 0.2
    assert fast["duration"].label == "ok" and fast["time_per_output_token"].label == "ok"
    assert fast["tokens_per_second"].score == pytest.approx(41 / 0.8) and fast["tokens_per_second"].label == "ok"
    slow = _by_name(asyncio.run(det.detect(replace(STREAM, ttft_s=0.9, duration_s=5.0, tpot_s=0.1))))
    assert slow["ttft"].label == "slow" and slow["duration"].label == "slow"
    assert slow["time_per_output_token"].label == "slow" and slow["tokens_per_second"].label == "slow"
    assert "threshold 0.5s" in slow["ttft"].explanation


def test_failed_exchanges_get_no_latency_findings() -> None:
    assert asyncio.run(LatencyDetector().detect(replace(STREAM, status=503, ttft_s=None))) == []


def test_regression_against_the_rolling_baseline_per_model() -> None:
    det = LatencyDetector(baseline_size=40, recent_size=10, regression_factor=1.5)

    async def feed(ttft: float, n: int, model: str = "m") -> list:  # type: ignore[type-arg]
        out = []
        for _ in range(n):
            out = list(await det.detect(replace(STREAM, ttft_s=ttft, model=model)))
        return out

    async def run() -> None:
        first = await feed(0.2, 39)
        assert "latency_regression" not in _by_name(first)  # no baseline yet
        steady = _by_name(await feed(0.2, 5))
        assert steady["latency_regression"].label == "ok"
        regressed = _by_name(await feed(0.5, 10))
        assert regressed["latency_regression"].label == "regressed"
        assert regressed["latency_regression"].score == pytest.approx(2.5)
        other = _by_name(await feed(0.5, 5, model="other"))
        assert "latency_regression" not in other  # baselines are per model

    asyncio.run(run())


def test_bad_options_are_refused_and_env_strings_converted() -> None:
    with pytest.raises(ConfigError, match="baseline_size must be >= recent_size"):
        LatencyDetector(baseline_size=5, recent_size=10)
    with pytest.raises(ConfigError, match="options.ttft_threshold_s: must be greater than 0"):
        LatencyDetector(ttft_threshold_s=-1)
    with pytest.raises(ConfigError, match="unknown key 'ttft'"):
        LatencyDetector(ttft=1)
    assert LatencyDetector(ttft_threshold_s="1.5").ttft_threshold_s == 1.5  # from ${VAR:-1.5}
