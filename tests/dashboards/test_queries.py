"""Every query of every generated dashboard runs against a real Prometheus that scraped a loaded sidecar.

Prometheus scrapes the sidecar's admin port every second and evaluates the
committed SLO rules (`deploy/prometheus/rules/`); ~50 chat requests (streaming
and not) go through the sidecar to the mock upstream, scored by the
hallucination detector. Each panel query then runs as Grafana would run it
(`query_range`, `$__rate_interval` and the "All" value of every variable
substituted) and must succeed; the panels listed in `MUST_HAVE_DATA` and
`SLI_PANELS` must return at least one number.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from genai_sre.config import Config, DetectorConfig, ModelPrice, PricesConfig
from genai_sre.dashboards import DASHBOARDS, build, targets
from genai_sre.mock.scenario import Latency, Phase, Scenario
from tests.harness import stack
from tests.servers import prometheus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.y*ml"))
SCENARIO = Scenario(phases=(Phase(name="fast", ttft_s=Latency(0.005, 0.02), tokens_per_s=5000),))
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "The Eiffel Tower is 330 metres tall. It was completed in 1889."},
    {"role": "user", "content": "How tall is the Eiffel Tower and when was it completed?"},
]

# Small windows and counts so the bias detector reports within the test's few seconds.
BIAS = {"min_count": 5, "evaluate_every_s": 1.0, "bucket_s": 1.0, "windows_s": [10.0]}
REGIONS = ("eu", "us")
TENANTS = ("acme", "globex")

# (dashboard uid, panel title): panels that must show data after the load above.
MUST_HAVE_DATA = (
    {
        ("genai-sre-llm-traffic", t)
        for t in (
            "Requests by status class",
            "Error ratio",
            "Requests by model",
            "In flight",
            "Request duration",
            "Time to first token",
            "Time per output token",
            "Tokens per second",
            "Tokens per request",
            "Sidecar overhead",
            "Scored share",
            "Pipeline queue and drops",
        )
    }
    | {
        ("genai-sre-quality", t)
        for t in (
            "Hallucination risk distribution",
            "Risk percentiles",
            "Mean risk by model",
            "Flagged rate by route and model",
            "Findings by detector and label",
            "Detector time p99",
        )
    }
    | {("genai-sre-quality", "Flagged rate by tenant and app")}
    | {
        ("genai-sre-cost", t)
        for t in (
            "Spend in range",
            "Cost per request",
            "Unpriced share",
            "Estimated share of spend",
            "Spend by model",
            "Spend by tenant",
            "Spend by app",
            "Cost per request by model",
            "Spend by tenant and app",
            "Tokens per second by type",
            "Cached share of input",
            "Requests by pricing",
        )
    }
    | {("genai-sre-slo-overview", "Objective")}
)

# SLO panels fed by `genai_sre_slo_events_total` through the generated recording rules.
SLI_PANELS = {
    ("genai-sre-slo-overview", t)
    for t in (
        "SLI over the period",
        "Error budget remaining",
        "SLI (5m) against the objective",
        "Burn rate by window",
        "Burn rate now (shortest window)",
        "SLI events by outcome",
    )
}


def grafana_expr(expr: str) -> str:
    """What Grafana sends: `$__rate_interval` and `$__range` as durations, every variable at its "All" value `.*`."""
    expr = expr.replace("$__rate_interval", "10s").replace("$__range", "5m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def has_number(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(v)) for series in result for _, v in series.get("values", []))


def configure(tmp: Path):  # type: ignore[no-untyped-def]
    """The hallucination detector on, and the shipped SLO and alerting files (the sidecar then exports SLI events)."""

    def apply(cfg: Config) -> Config:
        return replace(
            cfg,
            detectors=(
                DetectorConfig(name="hallucination", type="hallucination"),
                DetectorConfig(name="bias", type="bias", options=BIAS),
            ),
            labels=replace(cfg.labels, group_headers={"region": "x-user-region"}),
            # the mock model priced, so the cost panels have spend to show
            telemetry=replace(cfg.telemetry, prices=PricesConfig(models={"mock-llm": ModelPrice(1.0, 4.0)})),
            storage=replace(cfg.storage, data_dir=str(tmp / "data")),
            slo=replace(cfg.slo, file=str(ROOT / "configs" / "slos.yaml")),
            alerting=replace(cfg.alerting, file=str(ROOT / "configs" / "alerting.yaml")),
        )

    return apply


def test_every_dashboard_query_runs_against_prometheus(tmp_path: Path) -> None:
    assert RULES, "deploy/prometheus/rules/ holds no rules file; generate it with `genai-sre rules --out ...`"
    with stack(SCENARIO, configure=configure(tmp_path)) as s:
        with prometheus(tmp_path, [f"127.0.0.1:{s.sidecar.admin_port}"], rule_files=RULES) as prom:
            prom.wait_for('up{job="genai-sre"} == 1')
            start = time.time()
            client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
            for i in range(50):
                headers = {"x-user-region": REGIONS[i % 2], "x-tenant": TENANTS[i % 2], "x-app": "chat"}
                if i % 3:
                    list(client.chat.completions.create(
                        model="mock-llm", messages=MESSAGES, stream=True, extra_headers=headers
                    ))
                else:
                    client.chat.completions.create(
                        model="mock-llm", messages=MESSAGES, extra_headers=headers
                    )
                time.sleep(0.08)
            s.idle()
            time.sleep(3)  # three more scrapes after the last request
            prom.wait_for("genai_sre_findings_total")
            end = time.time()

            required = MUST_HAVE_DATA | SLI_PANELS
            with_data: set[tuple[str, str]] = set()
            checked = 0
            for name in DASHBOARDS:
                for t in targets(build(name)):
                    result = prom.query_range(grafana_expr(t.expr), start - 5, end)  # raises on a PromQL error
                    checked += 1
                    if has_number(result):
                        with_data.add((t.dashboard, t.panel))
    assert checked >= 40
    missing = sorted(required - with_data)
    assert not missing, f"panels without data: {missing}"
    panels = {(t.dashboard, t.panel) for n in DASHBOARDS for t in targets(build(n))}
    assert MUST_HAVE_DATA <= panels, MUST_HAVE_DATA - panels
