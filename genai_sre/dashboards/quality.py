"""Answer quality: hallucination risk distribution, flagged rate by route and model, detector health.

Scores come from `genai_sre_evaluation_score` (a histogram of detector scores
in [0, 1], labelled with the `gen_ai_evaluation_name`), verdicts from
`genai_sre_findings_total` (`label="flagged"` for a hallucination above the
detector's threshold).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap
from grafana_foundation_sdk.models import dashboard as dm

from genai_sre.dashboards.panels import (
    PROM,
    RATE,
    Grid,
    base_dashboard,
    metric,
    query,
    query_variable,
    timeseries_panel,
)

__all__ = ["EVALUATION", "UID", "build", "flagged_ratio"]

UID = "genai-sre-quality"
EVALUATION = "hallucination_risk"
# findings carry tenant and app; the score histogram (bucketed) only route and model
WHO = 'route=~"$route", model=~"$model", tenant=~"$tenant", app=~"$app"'


def flagged_ratio(by: str) -> str:
    """Share of scored answers flagged, grouped `by`; 0 (not absent) while nothing is flagged."""
    findings = metric("genai_sre_findings")
    sel = f'gen_ai_evaluation_name="{EVALUATION}", {WHO}'
    every = f"sum by ({by}) (rate({findings}{{{sel}}}[{RATE}]))"
    flagged = f'sum by ({by}) (rate({findings}{{{sel}, label="flagged"}}[{RATE}]))'
    return f"({flagged}\nor {every} * 0)\n/ {every}"


def build() -> dm.Dashboard:
    g = Grid()
    score = metric("genai_sre_evaluation_score")
    risk = f'{{gen_ai_evaluation_name="{EVALUATION}", route=~"$route", model=~"$model"}}'
    d = base_dashboard(
        "genai-sre / Answer quality",
        UID,
        "Hallucination risk of scored answers and how often answers are flagged, by route and model.",
        ["quality", "hallucination"],
        query_variable("route", "Route", f"{score}_count, route"),
        query_variable("model", "Model", f"{score}_count, model"),
        query_variable("tenant", "Tenant", f'{metric("genai_sre_findings")}, tenant'),
        query_variable("app", "App", f'{metric("genai_sre_findings")}, app'),
        since="now-6h",
    )
    d = d.with_row(g.row("Hallucination risk"))
    d = d.with_panel(g.place(
        heatmap.Panel()
        .title("Hallucination risk distribution")
        .description("Scored answers per risk bucket over time (0 = grounded, 1 = unsupported).")
        .datasource(PROM)
        .with_target(query(f"sum by (le) (increase({score}_bucket{risk}[{RATE}]))", "{{le}}", fmt="heatmap")),
        12, 9,
    ))
    d = d.with_panel(g.place(timeseries_panel(
        "Risk percentiles", "p50 and p90 of the hallucination risk score.", "percentunit",
        query(f"histogram_quantile(0.5, sum by (le) (rate({score}_bucket{risk}[{RATE}])))", "p50"),
        query(f"histogram_quantile(0.9, sum by (le) (rate({score}_bucket{risk}[{RATE}])))", "p90", ref="B"),
    ).max(1), 6, 9))
    d = d.with_panel(g.place(timeseries_panel(
        "Mean risk by model", "Mean hallucination risk per model.", "percentunit",
        query(
            f"sum by (model) (rate({score}_sum{risk}[{RATE}]))\n/ sum by (model) (rate({score}_count{risk}[{RATE}]))",
            "{{model}}",
        ),
    ).max(1), 6, 9))
    d = d.with_row(g.row("Flagged answers"))
    d = d.with_panel(g.place(timeseries_panel(
        "Flagged rate by route and model",
        "Share of scored answers the hallucination detector flagged (tenant and app filters apply).",
        "percentunit", query(flagged_ratio("route, model"), "{{route}} {{model}}"),
    ).max(1), 12, 8))
    findings = metric("genai_sre_findings")
    d = d.with_panel(g.place(timeseries_panel(
        "Findings by detector and label", "Findings per second from every detector.", "ops",
        query(
            f"sum by (detector, gen_ai_evaluation_name, label) (rate({findings}{{{WHO}}}[{RATE}]))",
            "{{detector}} {{gen_ai_evaluation_name}} {{label}}",
        ),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Flagged rate by tenant and app", "Share of scored answers flagged, per tenant and app.", "percentunit",
        query(flagged_ratio("tenant, app"), "{{tenant}} {{app}}"),
    ).max(1), 24, 8))
    d = d.with_row(g.row("Detectors"))
    runs = metric("genai_sre_detector_runs")
    d = d.with_panel(g.place(timeseries_panel(
        "Detector runs not scored", "Runs that failed, timed out, were sampled out or ran over the CPU budget.", "ops",
        query(f'sum by (detector, outcome) (rate({runs}{{outcome!="scored"}}[{RATE}]))', "{{detector}} {{outcome}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Detector time p99", "99th percentile of the time a detector takes per exchange.", "s",
        query(
            f'histogram_quantile(0.99, sum by (le, detector) (rate({metric("genai_sre_detector_duration_seconds")}'
            f"_bucket[{RATE}])))",
            "{{detector}}",
        ),
    ), 12, 8))
    return d.build()
