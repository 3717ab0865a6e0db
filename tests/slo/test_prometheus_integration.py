"""A real Prometheus on loopback scrapes SLI events and evaluates the generated rules.

The scraped server is a small prometheus_client HTTP server exporting
`genai_sre_slo_events_total` exactly as the sidecar does; the same events go
through an `SLIRecorder` into an in-process engine. The SLO uses a 1-hour
period and second-scale windows so that the error burst pages within seconds
(factor = budget share x period / long window = 0.02 x 1h / 1m = 1.2).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.rules import render
from genai_sre.slo.sli import SLIRecorder
from genai_sre.slo.spec import parse_slos
from genai_sre.slo.window import WindowSettings
from genai_sre.telemetry.metrics import Metrics
from tests.servers import Prometheus, free_port, prometheus

pytestmark = pytest.mark.integration

SLOS = parse_slos(
    """
service: it
min_events: 5
alert_windows:
  page: [{budget_percent: 2, long: 1m, short: 15s}]
  ticket: [{budget_percent: 10, long: 5m, short: 30s}]
self_monitoring: {enabled: false}
slos:
  - {name: avail, objective: 99, period: 1h, sli: {kind: availability}}
"""
)


class Traffic(threading.Thread):
    """20 requests/s through the SLI recorder; from `burst()` on, half of them fail."""

    def __init__(self, recorder: SLIRecorder, engine: SLOEngine) -> None:
        super().__init__(daemon=True)
        self.recorder, self.engine = recorder, engine
        self.failing = threading.Event()
        self.stop = threading.Event()
        self.engine_pages: list[float] = []
        self.engine_labels: dict[str, str] = {}

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            n += 1
            ok = not (self.failing.is_set() and n % 2 == 0)
            self.recorder.on_request("/v1/chat/completions", "mock", None, ok=ok, probe=False)
            for alert in self.engine.evaluate():
                if alert.labels["severity"] == "page" and alert.status == "firing":
                    self.engine_pages.append(time.time())
                    self.engine_labels = dict(alert.labels)


@pytest.fixture
def exporter() -> Iterator[tuple[int, Traffic]]:
    registry = CollectorRegistry()
    counter = Metrics(registry).counter("genai_sre_slo_events")
    engine = SLOEngine(SLOS, windows=WindowSettings(fine_bucket_s=1.0, fine_span_s=600, coarse_bucket_s=10))
    recorder = SLIRecorder(SLOS, lambda slo, good: counter.labels(slo, "good" if good else "bad").inc(), engine)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    traffic = Traffic(recorder, engine)
    traffic.start()
    try:
        yield port, traffic
    finally:
        traffic.stop.set()
        traffic.join(5)
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def prom(tmp_path: Path, exporter: tuple[int, Traffic]) -> Iterator[Prometheus]:
    with prometheus(tmp_path, [f"127.0.0.1:{exporter[0]}"], rules=render(SLOS)) as server:
        yield server


def test_prometheus_pages_on_an_error_burst_and_the_engine_agrees(
    prom: Prometheus, exporter: tuple[int, Traffic]
) -> None:
    _, traffic = exporter
    time.sleep(4)  # healthy traffic first: some scrapes with no errors
    assert prom.firing("page") == []
    assert traffic.engine_pages == []
    burst_at = time.time()
    traffic.failing.set()
    deadline = time.monotonic() + 40
    pages: list[dict[str, Any]] = []
    # Annotations are templated at each evaluation; the burn-rate one reads a recording of another
    # group, which may lag the alert by one evaluation: wait for both.
    while not (pages and pages[0]["annotations"].get("burn_rate")) and time.monotonic() < deadline:
        time.sleep(0.5)
        pages = prom.firing("page")
    assert pages, "no page in Prometheus 40 s after the burst began"
    labels = pages[0]["labels"]
    assert labels["alertname"] == "AvailBudgetBurn" and labels["slo"] == "avail" and labels["sloth_id"] == "it-avail"
    assert traffic.engine_pages and traffic.engine_pages[0] >= burst_at
    assert traffic.engine_labels == labels  # the sidecar's own engine fired the same alert
    # The burn-rate annotation is filled from the recorded current burn rate (50% errors / 1% = 50x).
    assert 20 < float(pages[0]["annotations"]["burn_rate"]) <= 60
    ratio = prom.query("slo:sli_error:ratio_rate15s")
    assert ratio and 0.3 < float(ratio[0]["value"][1]) < 0.7
