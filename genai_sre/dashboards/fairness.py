"""Fairness across user groups: disparity per attribute, group outcomes, drift, counterfactual probes.

Reads the gauges the bias detector exports over its sliding window
(`genai_sre_fairness_*`) and the probe results (`genai_sre_probe_*`).
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
    table_panel,
    thresholds,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "genai-sre-fairness"


def build() -> dm.Dashboard:
    g = Grid()
    disparity = metric("genai_sre_fairness_disparity")
    sel = '{attribute=~"$attribute"}'
    d = base_dashboard(
        "genai-sre / Fairness",
        UID,
        "Outcome gaps between groups of each sensitive attribute, and counterfactual probe results.",
        ["fairness", "bias"],
        query_variable("attribute", "Attribute", f"{disparity}, attribute"),
    )
    d = d.with_row(g.row("Disparity"))
    d = d.with_panel(g.place(timeseries_panel(
        "Disparity per attribute", "Widest gap of an outcome metric between the groups of an attribute.", "short",
        query(f"max by (attribute, metric) ({disparity}{sel})", "{{attribute}} {{metric}}"),
    ).thresholds(thresholds((None, "green"), (0.1, "orange"), (0.2, "red"))), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Disparity ratio", "Smallest over largest group value (1 is parity; the four-fifths rule flags < 0.8).",
        "percentunit",
        query(f'min by (attribute, metric) ({metric("genai_sre_fairness_disparity_ratio")}{sel})',
              "{{attribute}} {{metric}}"),
    ).max(1).thresholds(thresholds((None, "red"), (0.8, "green"))), 12, 8))
    d = d.with_panel(g.place(table_panel(
        "Outcome per group", "Latest outcome per group (refusal rate, or mean sentiment, length, latency, risk).",
        query(f'{metric("genai_sre_fairness_group_outcome")}{sel}', instant=True, fmt="table"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Drift per group (PSI)", "Population stability index of each group's outcomes against its reference.",
        "short",
        query(f'max by (attribute, group, metric) ({metric("genai_sre_fairness_drift_psi")}{sel})',
              "{{attribute}}={{group}} {{metric}}"),
    ).thresholds(thresholds((None, "green"), (0.1, "orange"), (0.25, "red"))), 12, 8))
    d = d.with_row(g.row("Counterfactual probes"))
    d = d.with_panel(g.place(timeseries_panel(
        "Probe disparity by template", "Gap between the answers to the counterfactual variants of one template.",
        "short",
        query(f'max by (template, metric) ({metric("genai_sre_probe_disparity")})', "{{template}} {{metric}}"),
    ), 12, 8))
    d = d.with_panel(g.place(timeseries_panel(
        "Probe requests", "Probe requests per second by outcome.", "ops",
        query(f'sum by (outcome) (rate({metric("genai_sre_probe_requests")}[{RATE}]))', "{{outcome}}"),
    ), 12, 8))
    return d.build()
