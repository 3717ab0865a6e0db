from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.resources import Resource

from genai_sre.proxy.stats import ProxyStats
from genai_sre.telemetry.metrics import METRICS, Metrics, spec
from genai_sre.telemetry.otlp_metrics import collect_metrics
from genai_sre.telemetry.proxy_collector import ProxyCollector
from genai_sre.telemetry.spans import SCOPE
from tests.telemetry.receiver import attrs


def test_registry_snapshot_matches_metrics_table() -> None:
    m = Metrics()
    stats = ProxyStats()  # the proxy's inline numbers, exposed by a collector on the same registry
    m.registry.register(ProxyCollector(stats.snapshot))
    dur = "gen_ai_server_request_duration_seconds"
    stats.observe(dur, ("chat", "openai", "gpt", ""), 0.03)
    stats.observe(dur, ("chat", "openai", "gpt", ""), 3.0)
    stats.observe(dur, ("chat", "openai", "gpt", "timeout"), 90.0)
    m.histogram("gen_ai_client_token_usage").labels("chat", "openai", "gpt", "output").observe(10)
    stats.inc("genai_sre_requests", ("mock", "/v1/chat/completions", "gpt", "2xx"), 3)
    m.gauge("genai_sre_pipeline_queue_depth").set(4)
    pb = encode_metrics(collect_metrics(m.registry, Resource.create({}), SCOPE, 5, 10))
    metrics = {x.name: x for x in pb.resource_metrics[0].scope_metrics[0].metrics}
    assert set(metrics) <= {s.otel_name or s.name for s in METRICS}

    d = metrics["gen_ai.server.request.duration"]
    assert d.unit == "s" and d.description == spec("gen_ai_server_request_duration_seconds").description
    points = {attrs(p.attributes).get("error.type"): p for p in d.histogram.data_points}
    ok = points[None]  # empty error_type label: no attribute
    assert attrs(ok.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt",
    }
    assert list(ok.explicit_bounds) == list(spec("gen_ai_server_request_duration_seconds").buckets)
    assert ok.count == 2 and abs(ok.sum - 3.03) < 1e-9 and sum(ok.bucket_counts) == 2
    assert ok.bucket_counts[2] == 1  # 0.03 falls in (0.02, 0.04]
    assert points["timeout"].bucket_counts[-1] == 1  # above the last bound
    assert d.histogram.aggregation_temporality == 2  # cumulative, like Prometheus

    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    assert attrs(tokens.histogram.data_points[0].attributes)["gen_ai.token.type"] == "output"
    req = metrics["genai_sre_requests"]
    assert req.sum.is_monotonic and req.sum.data_points[0].as_double == 3.0
    assert metrics["genai_sre_pipeline_queue_depth"].gauge.data_points[0].as_double == 4.0
