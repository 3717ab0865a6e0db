"""Expose the proxy workers' statistics on `/metrics`, read at scrape time.

The forwarding path records plain numbers (`genai_sre.proxy.stats`); this
collector turns the sum over workers into the metric families defined in
`genai_sre.telemetry.metrics` (rows marked `collected=True`), so names, help
texts, labels and buckets come from the one table, and OTLP export (which
reads the same registry) sees them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from genai_sre.proxy.stats import Snapshot
from genai_sre.telemetry.metrics import METRICS, MetricSpec

__all__ = ["PROXY_METRICS", "ProxyCollector"]

PROXY_METRICS = (
    "genai_sre_requests",
    "genai_sre_upstream_errors",
    "genai_sre_refused_requests",
    "genai_sre_proxy_overhead_seconds",
    "genai_sre_in_flight_requests",
    "gen_ai_server_request_duration_seconds",
    "genai_sre_proxy_captures_dropped",
    "genai_sre_upstream_resolvable",
    "genai_sre_failover_active",
    "genai_sre_failover",
    "genai_sre_failover_probes",
    "genai_sre_failover_retries",
)
_SPECS = {s.name: s for s in METRICS if s.name in PROXY_METRICS}


def _family(s: MetricSpec) -> Metric:
    if s.kind == "counter":
        return CounterMetricFamily(s.name, s.description, labels=list(s.labels))
    if s.kind == "histogram":
        return HistogramMetricFamily(s.name, s.description, labels=list(s.labels))
    return GaugeMetricFamily(s.name, s.description, labels=list(s.labels))


class ProxyCollector(Collector):
    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self.source = source

    def describe(self) -> Iterator[Metric]:
        for s in _SPECS.values():
            yield _family(s)

    def collect(self) -> Iterator[Metric]:
        snap = self.source()
        for name, s in _SPECS.items():
            fam = _family(s)
            if s.kind == "counter":
                assert isinstance(fam, CounterMetricFamily)
                for key, value in sorted(snap.counters.get(name, {}).items()):
                    fam.add_metric(list(key), float(value))
            elif s.kind == "histogram":
                assert isinstance(fam, HistogramMetricFamily)
                bounds = s.buckets
                for key, (counts, total) in sorted(snap.histograms.get(name, {}).items()):
                    running, buckets = 0, []
                    for bound, n in zip((*bounds, float("inf")), counts, strict=True):
                        running += n
                        buckets.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
                    fam.add_metric(list(key), buckets, total)
            else:
                assert isinstance(fam, GaugeMetricFamily)
                for key, g in sorted(snap.gauges.get(name, {}).items()):
                    fam.add_metric(list(key), float(g))
            yield fam
