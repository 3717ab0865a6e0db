"""`genai-sre rules --format sloth|openslo`: the same SLOs, selector and severities, in queries promtool accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from genai_sre.cli import main
from genai_sre.slo.exports import openslo, sloth
from genai_sre.slo.spec import load_slos, parse_slos
from tests.servers import promtool

ROOT = Path(__file__).resolve().parents[2]
SLOS = parse_slos(
    """
service: shop-llm
selector: 'app="shop"'
severities: {page: critical, ticket: warning}
slos:
  - {name: avail, objective: 99.5, sli: {kind: availability}, alerting: {page: {enabled: false}}}
  - {name: ttft, objective: 99, period: 7d, sli: {kind: latency, threshold_s: 2}, selector: ''}
"""
)


def test_sloth_spec_carries_objectives_selector_and_severities() -> None:
    text = sloth(SLOS, "slos.yaml")
    doc = yaml.safe_load(text)
    assert doc["version"] == "prometheus/v1" and doc["service"] == "shop-llm"
    avail, ttft = doc["slos"]
    assert avail["objective"] == 99.5 and avail["alerting"]["name"] == "AvailBudgetBurn"
    events = avail["sli"]["events"]
    assert events["error_query"] == (
        'sum(rate(genai_sre_slo_events_total{slo="avail", outcome="bad", app="shop"}[{{.window}}]))'
    )
    assert events["total_query"] == 'sum(rate(genai_sre_slo_events_total{slo="avail", app="shop"}[{{.window}}]))'
    assert avail["alerting"]["page_alert"] == {"labels": {"severity": "critical"}, "disable": True}
    assert avail["alerting"]["ticket_alert"] == {"labels": {"severity": "warning"}}
    assert 'app="shop"' not in ttft["sli"]["events"]["total_query"]  # the per-SLO override
    assert "different periods (30d, 7d)" in text


def test_openslo_documents() -> None:
    service, avail, _ = list(yaml.safe_load_all(openslo(SLOS)))
    assert service == {"apiVersion": "openslo/v1", "kind": "Service", "metadata": {"name": "shop-llm"},
                       "spec": {"description": "SLOs of shop-llm, from genai-sre"}}
    spec = avail["spec"]
    assert avail["kind"] == "SLO" and spec["service"] == "shop-llm" and spec["budgetingMethod"] == "Occurrences"
    assert spec["objectives"] == [{"displayName": "avail", "target": 0.995}]
    assert spec["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    ratio = spec["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["good"]["metricSource"]["spec"]["query"] == (
        'genai_sre_slo_events_total{slo="avail", outcome="good", app="shop"}'
    )


def test_every_exported_query_is_valid_promql(tmp_path: Path) -> None:
    slos = load_slos(ROOT / "configs" / "slos.yaml")
    queries = []
    for s in yaml.safe_load(sloth(slos))["slos"] + yaml.safe_load(sloth(SLOS))["slos"]:
        queries += [q.replace("{{.window}}", "5m") for q in s["sli"]["events"].values()]
    for d in list(yaml.safe_load_all(openslo(slos))) + list(yaml.safe_load_all(openslo(SLOS))):
        if d["kind"] == "SLO":
            ratio = d["spec"]["indicator"]["spec"]["ratioMetric"]
            queries += [ratio[k]["metricSource"]["spec"]["query"] for k in ("good", "total")]
    rules = {"groups": [{"name": "exports", "rules": [{"record": f"q:{i}", "expr": q} for i, q in enumerate(queries)]}]}
    (tmp_path / "q.yml").write_text(yaml.safe_dump(rules))
    promtool("check", "rules", tmp_path / "q.yml")
    assert len(queries) == 4 * len(slos.slos) + 8


def test_cli_writes_both_formats(tmp_path: Path) -> None:
    slos = str(ROOT / "configs" / "slos.yaml")
    assert main(["rules", "--slos", slos, "--format", "sloth", "--out", str(tmp_path)]) == 0
    assert main(["rules", "--slos", slos, "--format", "openslo", "--out", str(tmp_path)]) == 0
    assert yaml.safe_load((tmp_path / "genai-sre-slos.sloth.yaml").read_text())["version"] == "prometheus/v1"
    assert len(list(yaml.safe_load_all((tmp_path / "genai-sre-slos.openslo.yaml").read_text()))) == 5
