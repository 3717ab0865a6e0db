"""deploy/docker-compose.yml and the configs it mounts: schema, Prometheus, Alertmanager, log sink."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import yaml

from tests.deploy.files import DEPLOY, ROOT, compose
from tests.servers import amtool, free_port, promtool


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)
    # The schema is strict: a misspelt key is caught.
    bad = compose()
    bad["services"]["genai-sre"]["comand"] = ["serve"]
    assert list(validator.iter_errors(bad))


def test_stack_services_and_wiring() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"mock-upstream", "genai-sre", "prometheus", "alertmanager", "log-sink", "grafana"}
    grafana_tag = services["grafana"]["image"].split(":")[1]
    major, minor = (int(x) for x in grafana_tag.split(".")[:2])
    assert (major, minor) >= (11, 6), "the dashboards target Grafana 11.6 (grafana-foundation-sdk 11.6 build)"
    for name, svc in services.items():
        assert svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"], name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert set(services["alertmanager"]["secrets"]) <= set(c["secrets"])
    prom_volumes = services["prometheus"]["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prom_volumes
    assert "./grafana/dashboards:/var/lib/grafana/dashboards/genai-sre:ro" in services["grafana"]["volumes"]


def test_prometheus_config_with_the_generated_rules(tmp_path: Path) -> None:
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    rules = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    assert rules, "deploy/prometheus/rules/ is empty: genai-sre rules --out deploy/prometheus/rules"
    cfg["rule_files"] = [str(DEPLOY / "prometheus" / "rules" / "*.yml")]  # the container path, on this machine
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    promtool("check", "config", tmp_path / "prometheus.yml")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    slos = yaml.safe_load((ROOT / "configs" / "slos.yaml").read_text())
    assert slos["self_monitoring"]["job"] in jobs, "the self-monitoring alerts select the sidecars' scrape job"
    assert jobs["genai-sre"]["static_configs"][0]["targets"] == ["genai-sre:9464"]


def test_alertmanager_configs_pass_amtool() -> None:
    for path in (DEPLOY / "compose" / "alertmanager.yml", DEPLOY / "alertmanager" / "alertmanager.yml"):
        amtool("check-config", path)


def test_compose_alertmanager_routes_to_the_sidecar_and_the_log_sink() -> None:
    am = yaml.safe_load((DEPLOY / "compose" / "alertmanager.yml").read_text())
    urls = [w["url"] for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert "http://genai-sre:9464/admin/alertmanager" in urls and "http://log-sink:8080/alerts" in urls
    hooks = [w for r in am["receivers"] for w in r["webhook_configs"] if "admin/alertmanager" in w["url"]]
    assert hooks[0]["http_config"]["authorization"]["credentials_file"] == "/run/secrets/genai-sre-admin-token"
    assert compose()["services"]["log-sink"]["command"][-1] == "8080"


def test_log_sink_prints_each_webhook_body() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DEPLOY / "compose" / "log_sink.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        body = json.dumps({"version": "4", "status": "firing", "alerts": [{"labels": {"slo": "x"}}]}).encode()
        deadline = time.monotonic() + 10
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=body, method="POST")
                with urllib.request.urlopen(req, timeout=2) as resp:
                    assert resp.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line == {"path": "/alerts", "body": json.loads(body)}
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
