"""The top-level `selector`, its per-SLO override and the `severities` mapping, under the real `promtool`,
in the engine's alert labels, the scrape-time collector and the incident service.

Two applications share one Prometheus and both export SLO `avail` and `quiet`: `shop` burns half its
budget-relevant traffic, `other` is healthy. With `selector: app="shop"` the `avail` page fires (with
`severity="critical"`); `quiet` overrides the selector with `app="other"` and never alerts. The
self-monitoring page (`up == 0`) carries the mapped severity too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_sre.errors import ConfigError
from genai_sre.slo.engine import alert_labels
from genai_sre.slo.rules import render, rule_groups
from genai_sre.slo.spec import parse_slos
from tests.servers import promtool

SLOS_TEXT = """
service: shop-llm
selector: 'app="shop"'
severities: {page: critical, ticket: warning}
min_events: 20
self_monitoring: {enabled: true, job: genai-sre, absent_for: 5m}
slos:
  - {name: avail, objective: 99, period: 30d, sli: {kind: availability}}
  - {name: quiet, objective: 99, period: 30d, sli: {kind: availability}, selector: 'app="other"'}
"""


def test_selector_is_added_to_every_events_selector_and_severities_to_every_alert() -> None:
    slos = parse_slos(SLOS_TEXT)
    groups = rule_groups(slos)
    raw = [r["expr"] for g in groups for r in g["rules"] if "genai_sre_slo_events_total" in r.get("expr", "")]
    assert raw and all('app="shop"' in e for e in raw if 'slo="avail"' in e)
    assert all('app="other"' in e and 'app="shop"' not in e for e in raw if 'slo="quiet"' in e)
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert {r["labels"]["severity"] for r in alerts} == {"critical", "warning"}
    assert {r["labels"]["sloth_severity"] for r in alerts if r["alert"].endswith("BudgetBurn")} == {"page", "ticket"}
    sidecar_down = next(r for r in alerts if r["alert"] == "GenAISRESidecarDown")
    assert sidecar_down["labels"]["severity"] == "critical"
    labels = alert_labels(slos, slos.get("avail"), "page")
    assert labels["severity"] == "critical" and labels["sloth_severity"] == "page"
    # the defaults are today's names
    plain = parse_slos("slos: [{name: a, objective: 99, sli: {kind: availability}}]")
    assert alert_labels(plain, plain.get("a"), "ticket")["severity"] == "ticket"
    assert 'rate(genai_sre_slo_events_total{slo="a"}[5m])' in render(plain)


@pytest.mark.parametrize(
    "bad",
    [
        "selector: 'app=shop'",  # unquoted value
        "selector: 'slo=\"x\"'",  # reserved label
        "selector: 'app=\"a\" env=\"b\"'",  # no comma
        "severities: {page: critical, ticket: critical}",
        "severities: {page: 'two words'}",
    ],
)
def test_bad_selector_or_severities_name_the_key(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_slos(bad + "\nslos: [{name: a, objective: 99, sli: {kind: availability}}]\n")


def test_selector_forms_are_normalised() -> None:
    slos = parse_slos("selector: '{namespace=~\"prod-.*\",app!=\"x\"}'\nslos: [{name: a, objective: 99, sli: "
                      "{kind: availability}}]")
    assert slos.selector_for(slos.get("a")) == 'namespace=~"prod-.*", app!="x"'


def test_promtool_pages_only_the_selected_application_with_mapped_severities(tmp_path: Path) -> None:
    slos = parse_slos(SLOS_TEXT)
    (tmp_path / "rules.yml").write_text(render(slos))
    series = []
    for slo in ("avail", "quiet"):
        # shop: 120 healthy minutes at 100 events/min, then 60 minutes at 50% errors; other: always healthy
        series += [
            {"series": f'genai_sre_slo_events_total{{slo="{slo}", outcome="good", app="shop", job="genai-sre"}}',
             "values": "0+100x120 12050+50x59"},
            {"series": f'genai_sre_slo_events_total{{slo="{slo}", outcome="bad", app="shop", job="genai-sre"}}',
             "values": "0+0x120 50+50x59"},
            {"series": f'genai_sre_slo_events_total{{slo="{slo}", outcome="good", app="other", job="genai-sre"}}',
             "values": "0+100x180"},
            {"series": f'genai_sre_slo_events_total{{slo="{slo}", outcome="bad", app="other", job="genai-sre"}}',
             "values": "0+0x180"},
        ]
    series.append({"series": 'up{job="genai-sre", instance="a"}', "values": "1x100 0x80"})
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "group_eval_order": [g["name"] for g in rule_groups(slos)],
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": 'ALERTS{alertname="AvailBudgetBurn", alertstate="firing"}', "eval_time": "119m",
                 "exp_samples": []},
                {"expr": 'count by (severity, sloth_severity) (ALERTS{alertname="AvailBudgetBurn", '
                         'alertstate="firing", severity="critical"})',
                 "eval_time": "140m",
                 "exp_samples": [{"labels": '{severity="critical", sloth_severity="page"}', "value": 1}]},
                {"expr": 'count(max_over_time(ALERTS{alertname="QuietBudgetBurn"}[3h]))', "eval_time": "180m",
                 "exp_samples": []},
                {"expr": 'count by (severity) (ALERTS{alertname="GenAISRESidecarDown", alertstate="firing"})',
                 "eval_time": "110m", "exp_samples": [{"labels": '{severity="critical"}', "value": 1}]},
            ],
        }],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    promtool("test", "rules", "test.yml", cwd=tmp_path)


def test_mapped_page_severity_opens_incidents(tmp_path: Path) -> None:
    import json

    from genai_sre.config import load_config
    from genai_sre.incidents.stack import build_alerting
    from genai_sre.wiring import page_severities

    (tmp_path / "slos.yaml").write_text(SLOS_TEXT)
    (tmp_path / "sidecar.yaml").write_text(
        f"storage: {{data_dir: {tmp_path / 'data'}}}\nslo: {{file: slos.yaml}}\nalerting: {{file: null}}\n"
    )
    config = load_config(tmp_path / "sidecar.yaml")
    assert page_severities(config) == ("critical",)
    service = build_alerting(config, environ={}, open_on=page_severities(config)).service
    assert service is not None

    def webhook(severity: str, key: str) -> bytes:
        labels = {"alertname": "AvailBudgetBurn", "slo": "avail", "severity": severity}
        return json.dumps({
            "version": "4", "groupKey": key, "status": "firing", "receiver": "genai-sre",
            "groupLabels": {"slo": "avail"}, "commonLabels": labels, "commonAnnotations": {}, "externalURL": "",
            "alerts": [{"status": "firing", "labels": labels, "annotations": {}, "startsAt": "2026-01-01T00:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": key}],
        }).encode()

    assert service.ingest_webhook(webhook("warning", "g1")).incident_id is None
    assert service.ingest_webhook(webhook("critical", "g2")).incident_id is not None
    service.store.close()
