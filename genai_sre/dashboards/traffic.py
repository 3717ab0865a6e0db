"""LLM traffic: requests, errors, latency and TTFT percentiles, tokens, sidecar overhead, scored share.

Latency and token panels read the OpenTelemetry GenAI histograms
(`gen_ai_server_*`, `gen_ai_client_token_usage`); request counts, transport
errors and the sidecar's own overhead read the proxy's `genai_sre_*` metrics.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.models import dashboard as dm

from genai_sre.dashboards.panels import (
    RATE,
    Grid,
    base_dashboard,
    metric,
    query,
    query_variable,
    stat_panel,
    timeseries_panel,
)

__all__ = ["UID", "build", "percentiles"]

UID = "genai-sre-llm-traffic"
QUANTILES = (0.5, 0.9, 0.99)

# tenant and app filter the request counter once it carries those labels; "All" (.*) also matches series without them
_WHO = 'route=~"$route", model=~"$model", tenant=~"$tenant", app=~"$app"'
_REQ = "{" + _WHO + "}"
_GENAI = '{gen_ai_request_model=~"$model"}'


def percentiles(histogram: str, selector: str, by: str = "") -> list[str]:
    """`histogram_quantile` expressions at p50, p90 and p99 of a histogram's buckets."""
    group = f"le, {by}" if by else "le"
    return [
        f"histogram_quantile({q}, sum by ({group}) (rate({metric(histogram, '_bucket')}{selector}[{RATE}])))"
        for q in QUANTILES
    ]


def _pct_targets(histogram: str, selector: str) -> list[prometheus.Dataquery]:
    exprs = percentiles(histogram, selector)
    return [
        query(e, f"p{round(q * 100)}", ref=chr(ord("A") + i))
        for i, (e, q) in enumerate(zip(exprs, QUANTILES, strict=True))
    ]


def _pct_panel(title: str, description: str, histogram: str, selector: str) -> timeseries.Panel:
    return timeseries_panel(title, description, "s", *_pct_targets(histogram, selector))


def build() -> dm.Dashboard:
    g = Grid()
    requests = metric("genai_sre_requests")
    d = base_dashboard(
        "genai-sre / LLM traffic",
        UID,
        "Requests, errors, latency, TTFT, tokens and the sidecar's own overhead, over every sidecar.",
        ["llm"],
        query_variable("route", "Route", f"{requests}, route"),
        query_variable("model", "Model", f"{requests}, model"),
        query_variable("tenant", "Tenant", f'{metric("genai_sre_usage_requests")}, tenant'),
        query_variable("app", "App", f'{metric("genai_sre_usage_requests")}, app'),
        refresh="30s",
        since="now-1h",
    )
    d = d.with_row(g.row("Requests"))
    d = d.with_panel(g.place(timeseries_panel(
        "Requests by status class", "Requests forwarded per second.", "reqps",
        query(f"sum by (status_class) (rate({requests}{_REQ}[{RATE}]))", "{{status_class}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Error ratio", "Share of requests answered 5xx or failed at the transport.", "percentunit",
        query(
            f'(sum(rate({requests}{{{_WHO}, status_class=~"5xx|error"}}[{RATE}]))'
            f" or vector(0))\n/ sum(rate({requests}{_REQ}[{RATE}]))",
            "errors",
        ),
    ), 6, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Transport errors", "Upstream timeouts, refused connections and cut streams per second.", "ops",
        query(
            f'sum by (error_type) (rate({metric("genai_sre_upstream_errors")}{{route=~"$route"}}[{RATE}]))',
            "{{error_type}}",
        ),
    ), 6, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Requests by model", "Requests per second per model.", "reqps",
        query(f"sum by (model) (rate({requests}{_REQ}[{RATE}]))", "{{model}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "In flight", "Requests being forwarded now.", "short",
        query(f'sum by (upstream) ({metric("genai_sre_in_flight_requests")})', "{{upstream}}"),
    ), 12, 8))
    d = d.with_row(g.row("Latency"))
    d = d.with_panel(g.place(_pct_panel(
        "Request duration", "Request received to last byte (gen_ai.server.request.duration).",
        "gen_ai_server_request_duration_seconds", _GENAI,
    ), 8, 8))
    d = d.with_panel(g.place(_pct_panel(
        "Time to first token", "Request received to first content token (gen_ai.server.time_to_first_token).",
        "gen_ai_server_time_to_first_token_seconds", _GENAI,
    ), 8, 8))
    d = d.with_panel(g.place(_pct_panel(
        "Time per output token", "Decode time per output token (gen_ai.server.time_per_output_token).",
        "gen_ai_server_time_per_output_token_seconds", _GENAI,
    ), 8, 8))
    d = d.with_row(g.row("Tokens"))
    usage = metric("gen_ai_client_token_usage")
    d = d.with_panel(g.place(timeseries_panel(
        "Tokens per second", "Input and output tokens per second (gen_ai.client.token.usage).", "short",
        query(f"sum by (gen_ai_token_type) (rate({usage}_sum{_GENAI}[{RATE}]))", "{{gen_ai_token_type}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Tokens per request", "Mean tokens per request by type and model.", "short",
        query(
            f"sum by (gen_ai_token_type, gen_ai_request_model) (rate({usage}_sum{_GENAI}[{RATE}]))\n"
            f"/ sum by (gen_ai_token_type, gen_ai_request_model) (rate({usage}_count{_GENAI}[{RATE}]))",
            "{{gen_ai_request_model}} {{gen_ai_token_type}}",
        ),
    ), 12, 8))
    d = d.with_row(g.row("Sidecar"))
    d = d.with_panel(g.place(_pct_panel(
        "Sidecar overhead", "Time the sidecar itself adds per request, before and after the upstream call.",
        "genai_sre_proxy_overhead_seconds", '{route=~"$route"}',
    ), 8, 8))
    d = d.with_panel(g.place(stat_panel(
        "Scored share", "Share of exchanges each detector scored (the rest was sampled out, over budget or failed).",
        "percentunit",
        query(f'min by (detector) ({metric("genai_sre_detector_scored_ratio")})', "{{detector}}", instant=True),
    ).min(0).max(1), 8, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Pipeline queue and drops", "Captures waiting to be scored, and captures dropped per second.", "short",
        query(f'sum({metric("genai_sre_pipeline_queue_depth")})', "queue depth"),
        query(f'sum by (reason) (rate({metric("genai_sre_pipeline_dropped")}[{RATE}]))', "dropped {{reason}}", ref="B"),
    ), 8, 8))
    return d.build()
