"""A real Prometheus on loopback scrapes SLI events and evaluates the generated rules.

The scraped server is a small prometheus_client HTTP server exporting
`genai_sre_slo_events_total` exactly as the sidecar does; the same events go
through an `SLIRecorder` into an in-process engine. The SLO uses a 1-hour
period and second-scale windows so that the error burst pages within seconds
(factor = budget share x period / long window = 0.02 x 1h / 1m = 1.2).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.rules import render
from genai_sre.slo.sli import SLIRecorder
from genai_sre.slo.spec import parse_slos
from genai_sre.slo.window import WindowSettings
from genai_sre.telemetry.metrics import Metrics

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (make system-deps)"),
]

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


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
def prometheus(tmp_path: Path, exporter: tuple[int, Traffic]) -> Iterator[str]:
    assert PROMETHEUS is not None
    port, _ = exporter
    (tmp_path / "rules.yml").write_text(render(SLOS))
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "genai-sre", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = free_port()
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get_json(f"{url}/api/v1/status/runtimeinfo")["status"] == "success":
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "prometheus exited"
            assert time.monotonic() < deadline, "prometheus did not start in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


def _firing_pages(url: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing" and a["labels"].get("severity") == "page"]


def test_prometheus_pages_on_an_error_burst_and_the_engine_agrees(
    prometheus: str, exporter: tuple[int, Traffic]
) -> None:
    _, traffic = exporter
    time.sleep(4)  # healthy traffic first: some scrapes with no errors
    assert _firing_pages(prometheus) == []
    assert traffic.engine_pages == []
    burst_at = time.time()
    traffic.failing.set()
    deadline = time.monotonic() + 40
    pages: list[dict[str, Any]] = []
    # Annotations are templated at each evaluation; the burn-rate one reads a recording of another
    # group, which may lag the alert by one evaluation: wait for both.
    while not (pages and pages[0]["annotations"].get("burn_rate")) and time.monotonic() < deadline:
        time.sleep(0.5)
        pages = _firing_pages(prometheus)
    assert pages, "no page in Prometheus 40 s after the burst began"
    labels = pages[0]["labels"]
    assert labels["alertname"] == "AvailBudgetBurn" and labels["slo"] == "avail" and labels["sloth_id"] == "it-avail"
    assert traffic.engine_pages and traffic.engine_pages[0] >= burst_at
    assert traffic.engine_labels == labels  # the sidecar's own engine fired the same alert
    # The burn-rate annotation is filled from the recorded current burn rate (50% errors / 1% = 50x).
    assert 20 < float(pages[0]["annotations"]["burn_rate"]) <= 60
    ratio = get_json(f"{prometheus}/api/v1/query?query=slo:sli_error:ratio_rate15s")["data"]["result"]
    assert ratio and 0.3 < float(ratio[0]["value"][1]) < 0.7
