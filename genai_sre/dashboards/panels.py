"""Building blocks shared by every generated dashboard: datasource, queries, layout, panels.

Every dashboard has a `datasource` variable (type datasource, Prometheus
datasources only) and every panel, query and query variable reads
`${datasource}`, so the dashboards work on any Grafana whatever its Prometheus
datasource's uid (Grafana Cloud's `grafanacloud-prom`, most installs); the
variable starts on the default datasource. Metric names come
from `genai_sre.telemetry.metrics.METRICS` through `metric()`, so renaming a
metric there breaks generation instead of leaving a silent empty panel.
"""

from __future__ import annotations

from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from genai_sre.telemetry.metrics import spec

__all__ = [
    "PROM",
    "RATE",
    "Grid",
    "Placeable",
    "base_dashboard",
    "datasource_variable",
    "links",
    "metric",
    "query",
    "query_variable",
    "stat_panel",
    "table_panel",
    "thresholds",
    "timeseries_panel",
]

DATASOURCE_VARIABLE = "datasource"
PROM = dm.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
RATE = "$__rate_interval"


def metric(name: str, suffix: str = "") -> str:
    """The exposed Prometheus name of a metric in the table (`_total` for counters), plus `suffix`."""
    return spec(name).exposed_name + suffix


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "") -> prometheus.Dataquery:
    q = prometheus.Dataquery().datasource(PROM).expr(expr).ref_id(ref)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if fmt:
        q = q.format(pm.PromQueryFormat(fmt))
    return q


def query_variable(name: str, label: str, source: str) -> dashboard.QueryVariable:
    """A multi-value variable over `label_values(source)`; "All" is the regex `.*`."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(PROM)
        .query(f"label_values({source})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    """The `datasource` variable every panel reads: any Prometheus datasource, the default one first."""
    return dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")


def base_dashboard(
    title: str,
    uid: str,
    description: str,
    tags: list[str],
    *variables: dashboard.QueryVariable,
    refresh: str = "1m",
    since: str = "now-24h",
) -> dashboard.Dashboard:
    """A genai-sre dashboard: read-only, UTC, shared crosshair, the link bar, the datasource variable, then `variables`.

    `tags` come after `genai-sre` and before `generated`.
    """
    d = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["genai-sre", *tags, "generated"])
        .refresh(refresh)
        .time(since, "now")
        .timezone("utc")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(links())
        .with_variable(datasource_variable())
    )
    for v in variables:
        d = d.with_variable(v)
    return d


def links() -> dashboard.DashboardLink:
    """A link bar to every genai-sre dashboard (they all carry the tag `genai-sre`), keeping the time range."""
    return (
        dashboard.DashboardLink("genai-sre")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags(["genai-sre"])
        .as_dropdown(False)
        .keep_time(True)
        .include_vars(False)
        .target_blank(False)
    )


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


class Placeable(Protocol):
    def id(self, id_val: int) -> Self: ...
    def grid_pos(self, grid_pos: dm.GridPos) -> Self: ...


P = TypeVar("P", bound=Placeable)


class Grid:
    """Left-to-right, top-to-bottom placement on Grafana's 24-column grid, with stable panel ids."""

    WIDTH = 24

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def _new_line(self) -> None:
        self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def place(self, panel: P, w: int, h: int) -> P:
        if self.x + w > self.WIDTH:
            self._new_line()
        pos = dm.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        ident = self.next_id
        self.next_id += 1
        return panel.id(ident).grid_pos(pos)

    def row(self, title: str) -> dashboard.Row:
        if self.x:
            self._new_line()
        r = dashboard.Row(title).id(self.next_id).grid_pos(dm.GridPos(h=1, w=self.WIDTH, x=0, y=self.y))
        self.next_id += 1
        self.y += 1
        return r


def timeseries_panel(
    title: str, description: str, unit: str, *targets: prometheus.Dataquery, min_val: float | None = 0
) -> timeseries.Panel:
    p = timeseries.Panel().title(title).description(description).datasource(PROM).unit(unit)
    if min_val is not None:
        p = p.min(min_val)
    for t in targets:
        p = p.with_target(t)
    return p


def stat_panel(title: str, description: str, unit: str, *targets: prometheus.Dataquery) -> stat.Panel:
    p = stat.Panel().title(title).description(description).datasource(PROM).unit(unit)
    for t in targets:
        p = p.with_target(t)
    return p


def table_panel(title: str, description: str, target: prometheus.Dataquery) -> table.Panel:
    return table.Panel().title(title).description(description).datasource(PROM).with_target(target)
