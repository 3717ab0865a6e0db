"""`genai-sre serve` as a new user runs it: no config file, environment variables, the bundled detectors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genai_sre.mock.scenario import Scenario
from genai_sre.mock.server import MockUpstream
from tests.harness import LoopThread, start_app
from tests.servers import free_port

pytestmark = pytest.mark.integration

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall and was "
    "designed by the engineering company of Gustave Eiffel."
)


@pytest.fixture
def upstream() -> Iterator[str]:
    lt = LoopThread()
    runner, port = lt.call(start_app(MockUpstream(Scenario()).app()))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        lt.call(runner.cleanup())
        lt.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_SRE_")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def _metric_sum(text: str, name: str, *parts: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(p in line for p in parts)
    )


def test_serve_without_a_config_file_scores_with_the_bundled_detectors(tmp_path: Path, upstream: str) -> None:
    port, admin = free_port(), free_port()
    env = _env(
        GENAI_SRE_UPSTREAM=upstream, GENAI_SRE_PORT=str(port), GENAI_SRE_ADMIN_PORT=str(admin),
        GENAI_SRE_DATA_DIR="state",
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = started + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        body = {
            "model": "m",
            "messages": [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "When was it built?"}],
        }
        for _ in range(3):
            assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=10).status_code == 200
        scored = 0.0
        while scored < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
            text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
            scored = _metric_sum(text, "genai_sre_findings_total", 'detector="hallucination"')
        assert scored == 3, text
        assert _metric_sum(text, "genai_sre_findings_total", 'detector="refusal"') == 3
        assert _metric_sum(text, "genai_sre_findings_total", 'detector="latency"') > 0
        assert (tmp_path / "state").is_dir()  # GENAI_SRE_DATA_DIR, relative to where the command runs
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert err.count("detector 'bias' (bias) is idle") == 1, err  # said once, by the agent that loads it
    assert proc.returncode == 0, err[-3000:]


def test_serve_refuses_an_slo_without_its_detector_before_starting(tmp_path: Path) -> None:
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(f"detectors: [{{name: latency, type: latency}}]\nadmin: {{port: {free_port()}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg), "--port", str(free_port())],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "SLO 'grounded-answers' names detector 'hallucination', which is not configured" in done.stderr


def test_an_agent_configuration_error_stops_the_supervisor(tmp_path: Path) -> None:
    """A finding name only the loaded detector can vouch for: the agent refuses, the supervisor does not loop."""
    slos = tmp_path / "slos.yaml"
    slos.write_text(
        "version: genai-sre/slos/v1\nslos:\n"
        "  - {name: slow, objective: 99, period: 30d, sli: {kind: quality, detector: latency, finding: nope, "
        "threshold: 1}}\n"
    )
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(
        f"detectors: [{{name: latency, type: latency}}]\nslo: {{file: {slos}}}\nadmin: {{port: {free_port()}}}\n"
        f"proxy: {{port: {free_port()}, drain_s: 0}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "names finding 'nope' of detector 'latency'" in done.stderr
    assert "agent stopped on a configuration error" in done.stderr
    assert "replacing it" not in done.stderr
