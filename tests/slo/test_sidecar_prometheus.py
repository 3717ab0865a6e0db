"""A real Prometheus scrapes a real sidecar in front of the mock upstream's error scenario.

The sidecar is wired as `genai-sre serve` wires it (`genai_sre.wiring`), with
an SLO file of a 1-hour period and second-scale windows. Traffic goes
through the proxy; after a healthy phase the mock answers half the requests
with 503. Prometheus loads the rules generated from the same SLO file and
must show the page in `/api/v1/alerts`; the sidecar's own engine must fire
the same alert (read from its `/metrics`).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from genai_sre.config import Config
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.slo.rules import render
from genai_sre.slo.spec import load_slos
from tests.harness import stack
from tests.servers import prometheus

pytestmark = pytest.mark.integration

SLO_FILE = """
service: it
min_events: 5
alert_windows:
  page: [{budget_percent: 2, long: 1m, short: 15s}]
  ticket: [{budget_percent: 10, long: 5m, short: 30s}]
self_monitoring: {enabled: false}
slos:
  - {name: chat-availability, objective: 99, period: 1h, sli: {kind: availability}}
"""

FAST = Latency(median=0.002, p99=0.005)
SCENARIO = Scenario(
    name="burst",
    loop=False,
    phases=(
        Phase(name="healthy", duration_s=6, ttft_s=FAST, tokens_per_s=10000),
        Phase(name="failing", duration_s=600, ttft_s=FAST, tokens_per_s=10000, error_rate=0.5, error_status=503),
    ),
)


def _traffic(proxy_url: str, stop: threading.Event) -> None:
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy_url, timeout=5) as client:
        while not stop.wait(0.05):
            try:
                client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError:
                pass  # the SLI counts it; the test only drives load


def test_sidecar_scraped_by_prometheus_pages_on_the_error_scenario(tmp_path: Path) -> None:
    slo_path = tmp_path / "slos.yaml"
    slo_path.write_text(SLO_FILE)

    def configure(cfg: Config) -> Config:
        return replace(cfg, slo=replace(cfg.slo, file=str(slo_path), evaluation_interval_s=0.5))

    with stack(SCENARIO, configure=configure) as s:
        stop = threading.Event()
        sender = threading.Thread(target=_traffic, args=(s.proxy_url, stop), daemon=True)
        sender.start()
        try:
            target = s.admin_url.removeprefix("http://")
            with prometheus(tmp_path, [target], rules=render(load_slos(slo_path))) as prom:
                deadline = time.monotonic() + 60
                pages: list[dict[str, object]] = []
                while not pages and time.monotonic() < deadline:
                    time.sleep(0.5)
                    pages = prom.firing("page")
                assert pages, "Prometheus did not page within 60 s"
                labels = pages[0]["labels"]
                assert isinstance(labels, dict)
                assert labels["alertname"] == "ChatAvailabilityBudgetBurn" and labels["slo"] == "chat-availability"
                engine = s.sidecar.slo_engine
                assert engine is not None
                assert "page" in engine.status()[0].firing
                with urllib.request.urlopen(f"{s.admin_url}/metrics", timeout=5) as resp:
                    text = resp.read().decode()
                assert 'genai_sre_slo_alert_firing{severity="page",slo="chat-availability"} 1.0' in text
                assert 'genai_sre_slo_events_total{outcome="bad",slo="chat-availability"}' in text
        finally:
            stop.set()
            sender.join(5)
