"""Spend and tokens: by model, tenant and app, cost per request, cache and reasoning tokens, unpriced traffic.

Reads `genai_sre_cost_usd_total`, `genai_sre_tokens_total` and
`genai_sre_usage_requests_total` (`genai_sre.telemetry.usage`), which every
sidecar computes from the upstream's reported usage and the price table.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from genai_sre.dashboards.panels import (
    RATE,
    Grid,
    base_dashboard,
    metric,
    query,
    query_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "genai-sre-cost"
SEL = 'model=~"$model", tenant=~"$tenant", app=~"$app"'


def _spend(by: str) -> str:
    """US dollars per hour, grouped `by`."""
    return f'sum by ({by}) (rate({metric("genai_sre_cost_usd")}{{{SEL}}}[{RATE}])) * 3600'


def build() -> dm.Dashboard:
    g = Grid()
    cost = metric("genai_sre_cost_usd")
    tokens = metric("genai_sre_tokens")
    requests = metric("genai_sre_usage_requests")
    d = base_dashboard(
        "genai-sre / Cost",
        UID,
        "LLM spend and tokens per model, tenant and app, from reported usage and the price table.",
        ["cost"],
        query_variable("model", "Model", f"{requests}, model"),
        query_variable("tenant", "Tenant", f"{requests}, tenant"),
        query_variable("app", "App", f"{requests}, app"),
    )
    d = d.with_row(g.row("Spend"))
    d = d.with_panel(g.place(stat_panel(
        "Spend in range", "US dollars spent over the dashboard's time range (priced requests only).", "currencyUSD",
        query(f"sum(increase({cost}{{{SEL}}}[$__range]))", "spend", instant=True),
    ), 6, 6))
    d = d.with_panel(g.place(stat_panel(
        "Cost per request", "Mean spend per priced request over the time range.", "currencyUSD",
        query(
            f"sum(increase({cost}{{{SEL}}}[$__range]))\n"
            f'/ sum(increase({requests}{{{SEL}, pricing="priced"}}[$__range]))',
            "per request", instant=True,
        ),
    ), 6, 6))
    d = d.with_panel(g.place(stat_panel(
        "Unpriced share", "Requests whose model is not in the price table or that reported no usage: not in the spend.",
        "percentunit",
        query(
            f'(sum(increase({requests}{{{SEL}, pricing!="priced"}}[$__range])) or vector(0))\n'
            f"/ sum(increase({requests}{{{SEL}}}[$__range]))",
            "unpriced", instant=True,
        ),
    ), 6, 6))
    d = d.with_panel(g.place(stat_panel(
        "Estimated share of spend", "Spend computed from estimated token counts (telemetry.estimate_tokens).",
        "percentunit",
        query(
            f'(sum(increase({cost}{{{SEL}, source="estimated"}}[$__range])) or vector(0))\n'
            f"/ sum(increase({cost}{{{SEL}}}[$__range]))",
            "estimated", instant=True,
        ),
    ), 6, 6))
    d = d.with_panel(g.place(timeseries_panel(
        "Spend by model", "US dollars per hour per model.", "currencyUSD", query(_spend("model"), "{{model}}"),
    ), 8, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Spend by tenant", "US dollars per hour per tenant (`none`: no tenant header).", "currencyUSD",
        query(_spend("tenant"), "{{tenant}}"),
    ), 8, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Spend by app", "US dollars per hour per app (`none`: no app header).", "currencyUSD",
        query(_spend("app"), "{{app}}"),
    ), 8, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Cost per request by model", "Mean spend per priced request, per model.", "currencyUSD",
        query(
            f"sum by (model) (rate({cost}{{{SEL}}}[{RATE}]))\n"
            f'/ sum by (model) (rate({requests}{{{SEL}, pricing="priced"}}[{RATE}]))',
            "{{model}}",
        ),
    ), 12, 8))
    d = d.with_panel(g.place(table_panel(
        "Spend by tenant and app", "US dollars over the time range per tenant, app and model.",
        query(f"sum by (tenant, app, model) (increase({cost}{{{SEL}}}[$__range]))", instant=True, fmt="table"),
    ), 12, 8))
    d = d.with_row(g.row("Tokens"))
    d = d.with_panel(g.place(timeseries_panel(
        "Tokens per second by type",
        "input and output totals; cache_read and cache_write are parts of input, reasoning a part of output.",
        "short", query(f"sum by (token_type) (rate({tokens}{{{SEL}}}[{RATE}]))", "{{token_type}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Cached share of input", "Input tokens read from the provider's prompt cache, per model.", "percentunit",
        query(
            f'(sum by (model) (rate({tokens}{{{SEL}, token_type="cache_read"}}[{RATE}]))\n'
            f'or sum by (model) (rate({tokens}{{{SEL}, token_type="input"}}[{RATE}])) * 0)\n'
            f'/ sum by (model) (rate({tokens}{{{SEL}, token_type="input"}}[{RATE}]))',
            "{{model}}",
        ),
    ).max(1), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Requests by pricing", "priced, unpriced (model not in the price table) and no_usage, per second.", "reqps",
        query(f"sum by (pricing) (rate({requests}{{{SEL}}}[{RATE}]))", "{{pricing}}"),
    ), 24, 8))
    return d.build()
