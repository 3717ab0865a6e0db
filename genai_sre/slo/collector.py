"""Expose the SLO engine's state on `/metrics`, read at scrape time.

Register one `SLOCollector(engine)` on the sidecar's `CollectorRegistry`. The
metric names, help texts and labels come from `genai_sre.telemetry.metrics`
(the rows marked `collected=True`); nothing is stored between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from genai_sre.slo.engine import SLOEngine
from genai_sre.telemetry.metrics import spec

__all__ = ["SLOCollector"]


def _family(name: str) -> GaugeMetricFamily:
    s = spec(name)
    return GaugeMetricFamily(s.name, s.description, labels=list(s.labels))


class SLOCollector(Collector):
    def __init__(self, engine: SLOEngine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[Metric]:
        # Names without samples, so registering never computes the engine's state.
        for name in (
            "genai_sre_slo_error_ratio",
            "genai_sre_slo_burn_rate",
            "genai_sre_slo_window_events",
            "genai_sre_slo_error_budget_remaining_ratio",
            "genai_sre_slo_objective_ratio",
            "genai_sre_slo_alert_firing",
        ):
            yield _family(name)

    def collect(self) -> Iterator[Metric]:
        ratio = _family("genai_sre_slo_error_ratio")
        burn = _family("genai_sre_slo_burn_rate")
        events = _family("genai_sre_slo_window_events")
        remaining = _family("genai_sre_slo_error_budget_remaining_ratio")
        objective = _family("genai_sre_slo_objective_ratio")
        alert = _family("genai_sre_slo_alert_firing")
        for status in self.engine.status():
            for w in status.windows:
                events.add_metric([status.name, w.window], w.total)
                if w.error_ratio is not None and w.burn_rate is not None:
                    ratio.add_metric([status.name, w.window], w.error_ratio)
                    burn.add_metric([status.name, w.window], w.burn_rate)
            if status.budget_remaining is not None:
                remaining.add_metric([status.name], status.budget_remaining)
            objective.add_metric([status.name], status.objective / 100)
            for tier in ("page", "ticket"):
                alert.add_metric([status.name, self.engine.slos.severity(tier)], 1.0 if tier in status.firing else 0.0)
        yield from (ratio, burn, events, remaining, objective, alert)
