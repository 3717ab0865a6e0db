from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased, ParentBasedTraceIdRatio, TraceIdRatioBased

from genai_sre.config import OTLPConfig, load_config
from genai_sre.errors import ConfigError
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.otlp import build_otlp
from genai_sre.telemetry.otlp_config import resolve_settings

ON = OTLPConfig(enabled=True)


def test_defaults_without_environment() -> None:
    s = resolve_settings(ON, {})
    assert s.enabled and s.protocol == "http/protobuf"
    assert s.traces_endpoint == "http://localhost:4318/v1/traces"
    assert s.metrics_endpoint == "http://localhost:4318/v1/metrics"
    assert s.service_name == "genai-sre"
    assert isinstance(s.sampler, ParentBased)
    assert (s.schedule_delay_s, s.metric_interval_s, s.timeout_s, s.max_batch_size) == (5.0, 60.0, 10.0, 512)


def test_environment_gives_defaults_and_explicit_config_wins() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9999/custom",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-tenant=a",
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=ignored",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1500",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
    }
    s = resolve_settings(ON, env)
    assert s.traces_endpoint == "http://collector:4318/v1/traces"
    assert s.metrics_endpoint == "http://metrics:9999/custom"
    assert s.headers == {"authorization": "Bearer abc", "x-tenant": "a"}
    assert s.service_name == "from-env"
    assert s.resource_attributes["deployment.environment"] == "prod"
    assert isinstance(s.sampler, ParentBasedTraceIdRatio)
    assert (s.schedule_delay_s, s.metric_interval_s, s.timeout_s) == (0.2, 1.5, 2.5)

    explicit = OTLPConfig(enabled=True, endpoint="http://mine:4318", headers={"X-Tenant": "b"}, service_name="mine")
    s = resolve_settings(explicit, env)
    assert s.traces_endpoint == "http://mine:4318/v1/traces"
    assert s.metrics_endpoint == "http://mine:4318/v1/metrics"
    assert s.headers == {"authorization": "Bearer abc", "x-tenant": "b"}
    assert s.service_name == "mine"
    assert s.resource().attributes["service.name"] == "mine"


def test_header_values_are_not_in_the_repr() -> None:
    s = resolve_settings(OTLPConfig(enabled=True, headers={"authorization": "Bearer s3cret"}), {})
    assert "s3cret" not in repr(s)


def test_grpc_without_its_package_names_the_install() -> None:
    with pytest.raises(ConfigError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        resolve_settings(OTLPConfig(enabled=True, protocol="grpc"), {})
    with pytest.raises(ConfigError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        resolve_settings(ON, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "unknown sampler 'sometimes'"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "within"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
    ],
)
def test_bad_values_name_their_source(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_settings(ON, env)


def test_ratio_sampler_and_off_switch() -> None:
    s = resolve_settings(ON, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    assert isinstance(s.sampler, TraceIdRatioBased)
    assert not resolve_settings(ON, {"OTEL_SDK_DISABLED": "true"}).enabled


def test_build_otlp_is_none_unless_enabled() -> None:
    config = load_config(None)
    assert not config.telemetry.otlp.enabled
    assert build_otlp(config, Metrics(), env={}) is None
    assert resolve_settings(config.telemetry.otlp, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).enabled
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_SDK_DISABLED": "true"}
    assert not resolve_settings(config.telemetry.otlp, env).enabled


def test_yaml_section_and_environment_together(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "version: genai-sre/v1\n"
        "telemetry:\n"
        "  otlp:\n"
        "    enabled: true\n"
        "    endpoint: http://collector:4318\n"
        "    headers: {x-scope-orgid: team-a}\n"
        "    capture_content: true\n"
        "    max_queue_size: 100\n",
        encoding="utf-8",
    )
    config = load_config(path)
    s = resolve_settings(config.telemetry.otlp, {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t"})
    assert s.traces_endpoint == "http://collector:4318/v1/traces"
    assert s.headers == {"authorization": "Bearer t", "x-scope-orgid": "team-a"}
    assert s.capture_content and s.max_queue_size == 100
