"""Resolve the OTLP export settings from `telemetry.otlp` and the standard `OTEL_*` variables.

The OpenTelemetry convention holds: the environment gives the defaults, an
explicit value in the config file wins. `resolve_settings(otlp, env)` returns
one frozen `OTLPSettings`; `span_exporter()` and `metric_exporter()` build the
SDK exporters for the chosen protocol (`http/protobuf`, or `grpc` when
`opentelemetry-exporter-otlp-proto-grpc` is installed).

Config keys: `enabled`, `endpoint` (base URL), `protocol`, `headers` (merged
per key over `OTEL_EXPORTER_OTLP_HEADERS`), `service_name`, `capture_content`,
`export_metrics`, `max_queue_size`. Variables read when the key is unset:
`OTEL_EXPORTER_OTLP_ENDPOINT` and the per-signal `..._TRACES_ENDPOINT` /
`..._METRICS_ENDPOINT` (full URLs), `OTEL_EXPORTER_OTLP_PROTOCOL`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`; always from the environment:
`OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
`OTEL_METRIC_EXPORT_INTERVAL` (all times in milliseconds, as the
specification says) and `OTEL_SDK_DISABLED`. Export is on when `enabled` is
true or an `OTEL_EXPORTER_OTLP_*ENDPOINT` variable is set, and off whenever
`OTEL_SDK_DISABLED=true`. `docs/observability.md` has the
table with defaults.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from genai_sre.config import OTLPConfig
from genai_sre.errors import ConfigError

__all__ = ["OTLPSettings", "metric_exporter", "resolve_settings", "span_exporter"]

GRPC_PACKAGE = "opentelemetry-exporter-otlp-proto-grpc"
DEFAULT_SERVICE_NAME = "genai-sre"
_PROTOCOLS = ("http/protobuf", "grpc")


@dataclass(frozen=True)
class OTLPSettings:
    """Everything the exporter needs, resolved once. Header values are secrets: never logged."""

    enabled: bool
    protocol: str
    traces_endpoint: str
    metrics_endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sampler: Sampler = field(default_factory=lambda: ParentBased(ALWAYS_ON))
    capture_content: bool = False
    export_metrics: bool = True
    max_queue_size: int = 2048
    max_batch_size: int = 512
    schedule_delay_s: float = 5.0
    metric_interval_s: float = 60.0
    timeout_s: float = 10.0

    @property
    def service_name(self) -> str:
        return self.resource_attributes.get("service.name", DEFAULT_SERVICE_NAME)

    def resource(self) -> Resource:
        """The SDK resource (adds `telemetry.sdk.*`); the resolved attributes win over the SDK's own detection."""
        return Resource.create(dict(self.resource_attributes))


def resolve_settings(otlp: OTLPConfig, env: Mapping[str, str]) -> OTLPSettings:
    """Combine the config section with the `OTEL_*` variables in `env` (explicit config wins)."""
    endpoint_in_env = any(
        env.get(f"OTEL_EXPORTER_OTLP{signal}_ENDPOINT", "").strip() for signal in ("", "_TRACES", "_METRICS")
    )
    enabled = (otlp.enabled or endpoint_in_env) and env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
    protocol = otlp.protocol or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf"
    if protocol not in _PROTOCOLS:
        raise ConfigError(
            f"telemetry.otlp.protocol / OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported "
            f"(use {' or '.join(_PROTOCOLS)})"
        )
    if protocol == "grpc" and enabled and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
        raise ConfigError(f"OTLP protocol 'grpc' needs the gRPC exporter: pip install {GRPC_PACKAGE}")
    headers = parse_pairs(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""), "OTEL_EXPORTER_OTLP_HEADERS")
    headers.update({k.lower(): v for k, v in otlp.headers.items()})
    resource = parse_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    env_name = env.get("OTEL_SERVICE_NAME", "").strip() or resource.get("service.name")
    resource["service.name"] = otlp.service_name or env_name or DEFAULT_SERVICE_NAME
    if otlp.max_queue_size < 1:
        raise ConfigError(f"telemetry.otlp.max_queue_size must be at least 1, got {otlp.max_queue_size}")
    return OTLPSettings(
        enabled=enabled,
        protocol=protocol,
        traces_endpoint=_endpoint(otlp.endpoint, env, "TRACES", "v1/traces", protocol),
        metrics_endpoint=_endpoint(otlp.endpoint, env, "METRICS", "v1/metrics", protocol),
        headers=headers,
        resource_attributes=resource,
        sampler=sampler_from_env(env),
        capture_content=otlp.capture_content,
        export_metrics=otlp.export_metrics,
        max_queue_size=otlp.max_queue_size,
        max_batch_size=max(1, int(_number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512))),
        schedule_delay_s=_number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
        metric_interval_s=_number(env, "OTEL_METRIC_EXPORT_INTERVAL", 60000) / 1000,
        timeout_s=_number(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000) / 1000,
    )


def sampler_from_env(env: Mapping[str, str]) -> Sampler:
    """`OTEL_TRACES_SAMPLER` / `_ARG` as the SDK reads them, but an unknown name is an error, not a warning."""
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
    }
    if name in fixed:
        return fixed[name]
    if name in ("traceidratio", "parentbased_traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0").strip() or "1.0"
        try:
            rate = float(raw)
        except ValueError as exc:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: {raw!r} is not a number") from exc
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: {rate} must be within [0, 1]")
        return TraceIdRatioBased(rate) if name == "traceidratio" else ParentBasedTraceIdRatio(rate)
    known = ", ".join([*fixed, "traceidratio", "parentbased_traceidratio"])
    raise ConfigError(f"OTEL_TRACES_SAMPLER: unknown sampler {name!r} (known: {known})")


def parse_pairs(text: str, source: str) -> dict[str, str]:
    """`k1=v1,k2=v2` with percent-encoded values (the W3C baggage form the OTel variables use)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: expected key=value pairs separated by commas, got {item.strip()!r}")
        out[unquote(key.strip()).lower() if source.endswith("HEADERS") else unquote(key.strip())] = unquote(
            value.strip()
        )
    return out


def _endpoint(base: str | None, env: Mapping[str, str], signal: str, path: str, protocol: str) -> str:
    if base:
        return base if protocol == "grpc" else f"{base.rstrip('/')}/{path}"
    per_signal = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    if per_signal:
        return per_signal
    general = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if protocol == "grpc":
        return general or "http://localhost:4317"
    return f"{(general or 'http://localhost:4318').rstrip('/')}/{path}"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a number") from exc
    if value < 0:
        raise ConfigError(f"{name}: {value} must not be negative")
    return value


def span_exporter(settings: OTLPSettings) -> SpanExporter:
    """The SDK span exporter for the configured protocol and endpoint."""
    module = _exporter_module(settings.protocol, "trace_exporter")
    exporter: SpanExporter = module.OTLPSpanExporter(
        endpoint=settings.traces_endpoint, headers=dict(settings.headers), timeout=settings.timeout_s
    )
    return exporter


def metric_exporter(settings: OTLPSettings) -> MetricExporter:
    """The SDK metric exporter for the configured protocol and endpoint."""
    module = _exporter_module(settings.protocol, "metric_exporter")
    exporter: MetricExporter = module.OTLPMetricExporter(
        endpoint=settings.metrics_endpoint, headers=dict(settings.headers), timeout=settings.timeout_s
    )
    return exporter


def _exporter_module(protocol: str, name: str) -> Any:
    package = "grpc" if protocol == "grpc" else "http"
    try:
        return importlib.import_module(f"opentelemetry.exporter.otlp.proto.{package}.{name}")
    except ImportError as exc:
        hint = GRPC_PACKAGE if protocol == "grpc" else "opentelemetry-exporter-otlp-proto-http"
        raise ConfigError(f"OTLP protocol {protocol!r} needs its exporter package: pip install {hint}") from exc
