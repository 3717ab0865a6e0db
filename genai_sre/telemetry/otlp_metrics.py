"""Metrics over OTLP, read from the same Prometheus registry that serves `/metrics`.

Every metric is recorded once, on the instruments built from `METRICS` (inline
on the request path, or by `EvaluationMetrics` from evaluated exchanges). At
each export `collect_metrics()` reads that registry and converts the families
named in `METRICS` to OTLP data: the OTLP name is the spec's `otel_name` (the
GenAI semantic-convention name) or its Prometheus name, the unit and
description come from the spec, histogram buckets are the spec's buckets, and
label names take their attribute form (`gen_ai_request_model` ->
`gen_ai.request.model`, `error_type` -> `error.type`). Temporality is
cumulative, as in Prometheus, so a failed export loses no counts: the next one
carries them. `/metrics` and OTLP therefore never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as PromFamily
from prometheus_client.samples import Sample

from genai_sre.telemetry.metrics import METRICS, MetricSpec
from genai_sre.telemetry.spans import APP, TENANT

__all__ = ["ATTRIBUTE_NAMES", "attribute_name", "collect_metrics", "otlp_name"]

ATTRIBUTE_NAMES = {
    "gen_ai_operation_name": ga.GEN_AI_OPERATION_NAME,
    "gen_ai_provider_name": ga.GEN_AI_PROVIDER_NAME,
    "gen_ai_request_model": ga.GEN_AI_REQUEST_MODEL,
    "gen_ai_response_model": ga.GEN_AI_RESPONSE_MODEL,
    "gen_ai_token_type": ga.GEN_AI_TOKEN_TYPE,
    "gen_ai_evaluation_name": ga.GEN_AI_EVALUATION_NAME,
    "error_type": ERROR_TYPE,
    "tenant": TENANT,
    "app": APP,
}


def attribute_name(label: str) -> str:
    return ATTRIBUTE_NAMES.get(label, label)


def otlp_name(spec: MetricSpec) -> str:
    return spec.otel_name or spec.name


def collect_metrics(
    registry: CollectorRegistry,
    resource: Resource,
    scope: InstrumentationScope,
    start_ns: int,
    now_ns: int,
    specs: Sequence[MetricSpec] = METRICS,
) -> MetricsData:
    """One OTLP snapshot of the registry's families that `specs` defines (cumulative)."""
    by_name = {s.name: s for s in specs}
    metrics: list[Metric] = []
    for family in registry.collect():
        spec = by_name.get(family.name)
        if spec is None:
            continue
        metric = _convert(family, spec, start_ns, now_ns)
        if metric is not None:
            metrics.append(metric)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url="")],
                schema_url="",
            )
        ]
    )


def _convert(family: PromFamily, spec: MetricSpec, start_ns: int, now_ns: int) -> Metric | None:
    created = _created(family.samples, family.name)
    if spec.kind == "counter":
        points = [
            NumberDataPoint(_attrs(s.labels), created.get(_key(s.labels), start_ns), now_ns, s.value)
            for s in family.samples
            if s.name == f"{family.name}_total"
        ]
        if not points:
            return None
        data: Sum | Gauge | Histogram = Sum(points, AggregationTemporality.CUMULATIVE, True)
    elif spec.kind == "gauge":
        points = [NumberDataPoint(_attrs(s.labels), start_ns, now_ns, s.value) for s in family.samples]
        if not points:
            return None
        data = Gauge(points)
    else:
        hpoints = list(_histogram_points(family, created, start_ns, now_ns))
        if not hpoints:
            return None
        data = Histogram(hpoints, AggregationTemporality.CUMULATIVE)
    return Metric(otlp_name(spec), spec.description, spec.unit, data)


@dataclass
class _Series:
    labels: dict[str, str]
    buckets: list[tuple[float, float]] = field(default_factory=list)
    count: float = 0.0
    total: float = 0.0


def _histogram_points(
    family: PromFamily, created: Mapping[tuple[tuple[str, str], ...], int], start_ns: int, now_ns: int
) -> Iterable[HistogramDataPoint]:
    series: dict[tuple[tuple[str, str], ...], _Series] = {}
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        entry = series.setdefault(_key(labels), _Series(labels))
        if s.name == f"{family.name}_bucket":
            entry.buckets.append((float(s.labels["le"]), s.value))
        elif s.name == f"{family.name}_count":
            entry.count = s.value
        elif s.name == f"{family.name}_sum":
            entry.total = s.value
    for key, entry in series.items():
        buckets = sorted(entry.buckets)
        cumulative = [int(v) for _, v in buckets]
        yield HistogramDataPoint(
            attributes=_attrs(entry.labels),
            start_time_unix_nano=created.get(key, start_ns),
            time_unix_nano=now_ns,
            count=int(entry.count),
            sum=entry.total,
            bucket_counts=[c - p for c, p in zip(cumulative, [0, *cumulative[:-1]], strict=True)],
            explicit_bounds=[le for le, _ in buckets if not math.isinf(le)],
            min=None,  # type: ignore[arg-type]  # Prometheus keeps no min/max; the OTLP fields are optional
            max=None,  # type: ignore[arg-type]
        )


def _created(samples: Sequence[Sample], name: str) -> dict[tuple[tuple[str, str], ...], int]:
    return {_key(s.labels): int(s.value * 1e9) for s in samples if s.name == f"{name}_created"}


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))


def _attrs(labels: Mapping[str, str]) -> dict[str, str]:
    """Attribute form of a label set; an empty value (e.g. `error_type` of a success) is left out."""
    return {attribute_name(k): v for k, v in labels.items() if v != ""}
