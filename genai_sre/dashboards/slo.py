"""SLO overview: objective, SLI, error budget remaining, burn rate per window, firing alerts.

Reads the recordings `genai-sre rules` generates (Sloth's layout:
`slo:sli_error:ratio_rate<window>`, `slo:objective:ratio`,
`slo:error_budget:ratio`, `slo:period_error_budget_remaining:ratio`, ...) and the
raw SLI counter `genai_sre_slo_events_total` that every sidecar exports.
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
    thresholds,
    timeseries_panel,
)

__all__ = ["UID", "WINDOWS", "build"]

UID = "genai-sre-slo-overview"
# The alerting windows of the generated rules (ARCHITECTURE.md §4), shortest first.
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

_SEL = '{slo=~"$slo"}'
_ON = "on (sloth_id) group_left"


def burn_rate(window: str) -> str:
    """Burn rate over `window`: the error ratio divided by the error budget."""
    return f"slo:sli_error:ratio_rate{window}{_SEL}\n/ {_ON}\nslo:error_budget:ratio{_SEL}"


def build() -> dm.Dashboard:
    g = Grid()
    events = metric("genai_sre_slo_events")
    d = base_dashboard(
        "genai-sre / SLO overview",
        UID,
        "Objectives, SLIs, error budgets and multiwindow burn rates, from the generated rules.",
        ["slo"],
        query_variable("slo", "SLO", "slo:objective:ratio, slo"),
    )
    d = d.with_row(g.row("Budget"))
    d = d.with_panel(
        g.place(
            stat_panel(
                "Objective", "Target share of good events over the SLO period.", "percentunit",
                query(f"slo:objective:ratio{_SEL}", "{{slo}}", instant=True),
            ).decimals(3),
            6, 6,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "SLI over the period", "Share of good events over the whole SLO period, all sidecars together.",
                "percentunit",
                query(f"1 - (slo:period_burn_rate:ratio{_SEL}\n* {_ON}\nslo:error_budget:ratio{_SEL})", "{{slo}}",
                      instant=True),
            ).decimals(3),
            6, 6,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Error budget remaining", "1 - period burn rate; below 0 the SLO is missed for the period.",
                "percentunit",
                query(f"slo:period_error_budget_remaining:ratio{_SEL}", "{{slo}}", instant=True),
            ).thresholds(thresholds((None, "red"), (0.0, "orange"), (0.25, "green"))),
            12, 6,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "SLI (5m) against the objective", "Share of good events in the last 5 minutes.", "percentunit",
                query(f"1 - slo:sli_error:ratio_rate5m{_SEL}", "{{slo}}"),
                query(f"slo:objective:ratio{_SEL}", "{{slo}} objective", ref="B"),
                min_val=None,
            ),
            12, 8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Error budget remaining", "Over the SLO period, as it evolves.", "percentunit",
                query(f"slo:period_error_budget_remaining:ratio{_SEL}", "{{slo}}"),
                min_val=None,
            ),
            12, 8,
        )
    )
    d = d.with_row(g.row("Burn rates"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Burn rate by window",
                "Error ratio / error budget per alerting window. Page at 14.4 (1h and 5m) or 6 (6h and 30m); "
                "ticket at 3 (1d and 2h) or 1 (3d and 6h).",
                "x",
                *(query(burn_rate(w), "{{slo}} " + w, ref=chr(ord("A") + i)) for i, w in enumerate(WINDOWS)),
            ).thresholds(thresholds((None, "green"), (1.0, "yellow"), (6.0, "orange"), (14.4, "red"))),
            16, 9,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Burn rate now (shortest window)", "The current burn rate recorded by the rules.", "x",
                query(f"slo:current_burn_rate:ratio{_SEL}", "{{slo}}", instant=True),
            ).thresholds(thresholds((None, "green"), (1.0, "yellow"), (6.0, "orange"), (14.4, "red"))),
            8, 9,
        )
    )
    d = d.with_row(g.row("Events and alerts"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "SLI events by outcome", "Good and bad events per second, summed over every sidecar.", "ops",
                query(f"sum by (slo, outcome) (rate({events}{_SEL}[{RATE}]))", "{{slo}} {{outcome}}"),
            ),
            12, 8,
        )
    )
    d = d.with_panel(
        g.place(
            table_panel(
                "Firing and pending alerts", "Prometheus ALERTS for the selected SLOs (severity page or ticket).",
                query('ALERTS{alertstate=~"firing|pending", slo=~"$slo"}', instant=True, fmt="table"),
            ),
            12, 8,
        )
    )
    return d.build()
