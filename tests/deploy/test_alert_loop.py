"""The compose stack's alert path without Docker: the same Prometheus and Alertmanager configs
(`deploy/prometheus/prometheus.yml`, `deploy/compose/alertmanager.yml`), the same log sink, and the
sidecar config the compose file gives its `genai-sre` service (`deploy/config/sidecar.yaml` with the
service's environment, `configs/slos.yaml` and `configs/alerting.yaml` beside it), with container host
names pointed at loopback ports. A failing upstream burns the availability SLO; Prometheus fires the
generated page alert, Alertmanager delivers it to the sidecar's incident intake (bearer token from the
credentials file) and to the log sink, and the outage opens exactly one incident: the in-process
engine, asked to evaluate too, sends nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from genai_sre.config import Config, load_config
from genai_sre.mock.scenario import Latency, Phase, Scenario
from tests.deploy.files import DEPLOY, ROOT
from tests.harness import Stack, stack
from tests.servers import Prometheus, alertmanager, free_port, prometheus, running

pytestmark = pytest.mark.integration

TOKEN = "compose-loop-token"
FAILING = Scenario(phases=(Phase(name="down", ttft_s=Latency(0.0, 0.0), error_rate=1.0, error_status=503),))


def wait_until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def sink_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_page_reaches_the_incident_intake_and_the_log_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_SRE_ADMIN_TOKEN", TOKEN)

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    service_env = {
        k: str(v) for k, v in compose["services"]["genai-sre"]["environment"].items() if not str(v).startswith("${")
    }
    etc = tmp_path / "etc-genai-sre"  # /etc/genai-sre as the compose volumes lay it out
    etc.mkdir()
    shutil.copy(DEPLOY / "config" / "sidecar.yaml", etc / "config.yaml")
    shutil.copy(ROOT / "configs" / "slos.yaml", etc / "slos.yaml")
    shutil.copy(ROOT / "configs" / "alerting.yaml", etc / "alerting.yaml")
    composed = load_config(etc / "config.yaml", environ=service_env)
    assert composed.slo.evaluate == "prometheus" and composed.incidents.role == "primary"

    def configure(cfg: Config) -> Config:
        # the compose config, on loopback, in a temporary data directory, with the latency detector only
        return replace(
            composed,
            upstreams=cfg.upstreams,
            proxy=replace(composed.proxy, host="127.0.0.1", port=0),
            admin=replace(composed.admin, host="127.0.0.1", port=0),
            storage=replace(composed.storage, data_dir=str(tmp_path / "data")),
            detectors=tuple(d for d in composed.detectors if d.type == "latency"),
        )

    sink_port = free_port()
    sink_log = tmp_path / "sink.log"
    with stack(FAILING, configure=configure) as s:
        admin = f"127.0.0.1:{s.sidecar.admin_port}"
        (tmp_path / "admin-token").write_text(TOKEN)
        am_text = (DEPLOY / "compose" / "alertmanager.yml").read_text()
        am_text = am_text.replace("http://genai-sre:9464", f"http://{admin}")
        am_text = am_text.replace("http://log-sink:8080", f"http://127.0.0.1:{sink_port}")
        am_text = am_text.replace("/run/secrets/genai-sre-admin-token", str(tmp_path / "admin-token"))

        prom_cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        prom_cfg["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"})
        prom_cfg["rule_files"] = [str(DEPLOY / "prometheus" / "rules" / "*.yml")]
        jobs = {j["job_name"]: j for j in prom_cfg["scrape_configs"]}
        jobs["genai-sre"]["static_configs"][0]["targets"] = [admin]
        prom_cfg["scrape_configs"] = [jobs["genai-sre"]]

        sink_py = str(DEPLOY / "compose" / "log_sink.py")
        sink = [sys.executable, sink_py, "--host", "127.0.0.1", "--port", str(sink_port)]
        with running(sink, sink_log), alertmanager(tmp_path, am_text) as am:
            am_target = am.url.removeprefix("http://")
            prom_cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [am_target]
            with prometheus(tmp_path, config=prom_cfg) as prom:
                _page_path(s, prom, sink_log, admin)


def _page_path(s: Stack, prom: Prometheus, sink_log: Path, admin: str) -> None:
    """Traffic fails; the page goes Prometheus -> Alertmanager -> the log sink and the incident intake."""
    prom.wait_for('up{job="genai-sre"} == 1')
    client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
    for _ in range(60):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="mock-llm", messages=[{"role": "user", "content": "hi"}])
        time.sleep(0.05)
    prom.wait_for('ALERTS{alertstate="firing", slo="chat-availability", severity="page"}', timeout_s=30)

    def page_in_sink() -> list[dict[str, Any]]:
        return [
            line for line in sink_lines(sink_log)
            if line["path"] == "/alerts" and line["body"]["commonLabels"].get("slo") == "chat-availability"
        ]

    (first, *_) = wait_until(page_in_sink, 40, "the page notification in the log sink")
    assert first["body"]["status"] == "firing" and first["body"]["version"] == "4"

    def incidents() -> list[dict[str, Any]]:
        req = urllib.request.Request(
            f"http://{admin}/admin/incidents", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            found: list[dict[str, Any]] = json.loads(resp.read())["incidents"]
        return found

    opened = wait_until(incidents, 20, "an incident opened from Alertmanager's webhook")
    assert any("chat-availability" in json.dumps(i) for i in opened), opened
    # the in-process engine evaluates the same windows but must not open a second incident
    assert s.sidecar.evaluate_now is not None
    s.lt.call(s.sidecar.evaluate_now())
    time.sleep(12)  # longer than the in-process route's group_wait for pages (10 s)
    assert not s.sidecar.recent_alerts
    assert len(incidents()) == 1, incidents()
