"""OTLP export end to end: the official OpenAI client -> a real sidecar -> upstream; a real OTLP/HTTP receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from genai_sre.app import Sidecar
from genai_sre.config import Config, DetectorConfig, OTLPConfig, TelemetryConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.telemetry.otlp import OTLPExporter, build_otlp
from tests.harness import Stack, stack
from tests.servers import free_port
from tests.telemetry.receiver import Receiver, attrs, receiver

pytestmark = pytest.mark.integration

FAST = Scenario(phases=(Phase(name="fast", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000),))
FAILING = Scenario(phases=(Phase(name="down", ttft_s=Latency(0.0, 0.0), error_rate=1.0, error_status=500),))
API_KEY = "sk-live-SECRET0123456789abcdef"
MARKER = "zebra-quartz-5150 mail jane.doe@example.com"
MESSAGES: Any = [
    {"role": "system", "content": "The Eiffel Tower is 330 metres tall. It was completed in 1889."},
    {"role": "user", "content": f"How tall is the Eiffel Tower? {MARKER}"},
]
ENV = {"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_METRIC_EXPORT_INTERVAL": "600000", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"}
SERVER, CLIENT = 2, 3  # opentelemetry.proto Span.SpanKind values


@contextmanager
def otlp_stack(
    url: str,
    scenario: Scenario | None = FAST,
    upstream_app: web.Application | None = None,
    env: dict[str, str] = ENV,
    upstream_url: str | None = None,
    **otlp: Any,
) -> Iterator[tuple[Stack, OTLPExporter]]:
    exporters: list[OTLPExporter] = []

    def configure(cfg: Config) -> Config:
        section = OTLPConfig(enabled=True, endpoint=url, service_name="test-sidecar", **otlp)
        if upstream_url is not None:
            cfg = replace(cfg, upstreams=(replace(cfg.upstreams[0], url=upstream_url),))
        return replace(
            cfg,
            detectors=(DetectorConfig(name="latency", type="latency"),),
            telemetry=TelemetryConfig(otlp=section),
        )

    async def wire(sc: Sidecar) -> None:
        exporter = build_otlp(sc.config, sc.metrics, env=env)
        assert exporter is not None
        sc.sinks.append(exporter)  # the wiring genai_sre.wiring does
        sc.on_close(exporter.aclose)
        exporters.append(exporter)

    # the exporter is wired here as genai_sre.wiring does, but with the short test intervals of `env`
    with stack(scenario if upstream_app is None else None, upstream_app, configure, wire, wire_stages=False) as s:
        yield s, exporters[0]


def client(s: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.proxy_url + "/v1", api_key=API_KEY, max_retries=0, timeout=10)


def flush(s: Stack, exporter: OTLPExporter) -> None:
    s.idle()
    assert exporter.force_flush(10.0)


def sample(s: Stack, name: str, **labels: str) -> float:
    return s.sidecar.registry.get_sample_value(name, labels) or 0.0


def by_kind(rec: Receiver, kind: int) -> list[Any]:
    return [span for _, span in rec.spans() if span.kind == kind]


def test_spans_events_and_metrics_for_plain_and_streaming_requests() -> None:
    with receiver() as rec, otlp_stack(rec.url) as (s, exporter):
        c = client(s)
        plain = c.chat.completions.create(model="mock-llm", messages=MESSAGES, temperature=0.3, max_tokens=200)
        chunks = list(
            c.chat.completions.create(
                model="mock-llm", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        assert "330 metres" in (plain.choices[0].message.content or "")
        assert "330 metres" in "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        flush(s, exporter)
        metrics_text = httpx.get(s.admin_url + "/metrics").text

    servers, clients = by_kind(rec, SERVER), by_kind(rec, CLIENT)
    assert len(servers) == len(clients) == 2
    resource = rec.spans()[0][0]
    assert resource["service.name"] == "test-sidecar" and "telemetry.sdk.language" in resource
    mock_port = int(s.mock_url.rsplit(":", 1)[1])
    for server in servers:
        a = attrs(server.attributes)
        assert server.name == "chat mock-llm"
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "mock-llm" and a["gen_ai.response.model"]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == mock_port
        assert "error.type" not in a
        upstream = next(cl for cl in clients if cl.parent_span_id == server.span_id)
        assert upstream.trace_id == server.trace_id and upstream.name == server.name
        assert server.start_time_unix_nano <= upstream.start_time_unix_nano <= upstream.end_time_unix_nano
        assert upstream.end_time_unix_nano <= server.end_time_unix_nano
        names = {attrs(e.attributes)["gen_ai.evaluation.name"] for e in server.events}
        assert {"ttft", "duration"} <= names
        for e in server.events:
            assert e.name == "gen_ai.evaluation.result"
            ea = attrs(e.attributes)
            assert ea["gen_ai.evaluation.score.label"] in ("ok", "slow")
            assert isinstance(ea["gen_ai.evaluation.score.value"], float)
            assert ea["gen_ai.response.id"] == a["gen_ai.response.id"]

    plain_span = next(sp for sp in servers if "gen_ai.request.stream" not in attrs(sp.attributes))
    pa = attrs(plain_span.attributes)
    assert pa["gen_ai.response.id"] == plain.id
    assert pa["gen_ai.request.temperature"] == 0.3 and pa["gen_ai.request.max_tokens"] == 200
    stream_span = next(sp for sp in servers if attrs(sp.attributes).get("gen_ai.request.stream") is True)
    sa = attrs(stream_span.attributes)
    assert sa["gen_ai.response.time_to_first_chunk"] > 0
    assert sa["gen_ai.response.id"] == chunks[0].id

    m = rec.metrics()
    duration = m["gen_ai.server.request.duration"]
    assert duration.unit == "s" and sum(p.count for p in duration.histogram.data_points) == 2
    point = duration.histogram.data_points[0]
    assert attrs(point.attributes)["gen_ai.request.model"] == "mock-llm"
    # the same number /metrics shows: one source for both
    assert "gen_ai_server_request_duration_seconds_count{" in metrics_text
    prom_count = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("gen_ai_server_request_duration_seconds_count{")
    )
    assert prom_count == 2
    for name in ("gen_ai.server.time_to_first_token", "gen_ai.client.token.usage", "genai_sre_requests"):
        assert name in m, name
    types = {attrs(p.attributes)["gen_ai.token.type"] for p in m["gen_ai.client.token.usage"].histogram.data_points}
    assert types == {"input", "output"}
    assert sum(p.as_double for p in m["genai_sre_requests"].sum.data_points) == 2
    exported = {attrs(p.attributes)["signal"]: p.as_double for p in m["genai_sre_otlp_exported"].sum.data_points}
    assert exported["traces"] == 2


def test_failed_requests_export_error_spans() -> None:
    with receiver() as rec, otlp_stack(rec.url, FAILING) as (s, exporter):
        with pytest.raises(openai.InternalServerError):
            client(s).chat.completions.create(model="mock-llm", messages=MESSAGES)
        flush(s, exporter)
    (server,) = by_kind(rec, SERVER)
    (upstream,) = by_kind(rec, CLIENT)
    for span in (server, upstream):
        a = attrs(span.attributes)
        assert a["http.response.status_code"] == 500 and a["error.type"]
        assert span.status.code == 2  # STATUS_CODE_ERROR
    assert not server.events  # the latency detector scores successful exchanges only

    dead = f"http://127.0.0.1:{free_port()}"
    with receiver() as rec, otlp_stack(rec.url, upstream_url=dead) as (s, exporter):
        with pytest.raises(openai.APIStatusError) as info:
            client(s).chat.completions.create(model="mock-llm", messages=MESSAGES, stream=True)
        assert info.value.status_code == 502
        flush(s, exporter)
    (server,) = by_kind(rec, SERVER)
    a = attrs(server.attributes)
    assert a["error.type"] == "connect" and a["http.response.status_code"] == 502
    assert a["gen_ai.request.stream"] is True and "gen_ai.response.time_to_first_chunk" not in a
    points = rec.metrics()["gen_ai.server.request.duration"].histogram.data_points
    assert [attrs(p.attributes).get("error.type") for p in points] == ["connect"]


def _recording_upstream(seen: list[str]) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent", ""))
        await request.read()
        return web.json_response(
            {
                "id": "chatcmpl-traced",
                "object": "chat.completion",
                "created": 0,
                "model": "traced-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def test_client_trace_context_reaches_the_upstream_through_the_sidecar_span() -> None:
    trace_id, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    unsampled_trace = "5bf92f3577b34da6a3ce929d0e0e4737"
    seen: list[str] = []
    with receiver() as rec, otlp_stack(rec.url, upstream_app=_recording_upstream(seen)) as (s, exporter):
        c = client(s)
        r = c.chat.completions.create(
            model="traced-model", messages=MESSAGES, extra_headers={"traceparent": f"00-{trace_id}-{client_span}-01"}
        )
        assert r.choices[0].message.content == "hi"
        c.chat.completions.create(
            model="traced-model",
            messages=MESSAGES,
            extra_headers={"traceparent": f"00-{unsampled_trace}-{client_span}-00"},
        )
        flush(s, exporter)

    version, upstream_trace, upstream_parent, flags = seen[0].split("-")
    assert (version, upstream_trace, flags) == ("00", trace_id, "01")
    assert seen[1].startswith(f"00-{unsampled_trace}-") and seen[1].endswith("-00")
    (server,) = by_kind(rec, SERVER)  # the unsampled request exported nothing
    (upstream,) = by_kind(rec, CLIENT)
    assert server.trace_id.hex() == upstream.trace_id.hex() == trace_id
    assert server.parent_span_id.hex() == client_span
    assert upstream.parent_span_id == server.span_id
    assert upstream.span_id.hex() == upstream_parent  # the upstream's parent is our exported span
    assert attrs(server.attributes)["gen_ai.response.id"] == "chatcmpl-traced"


def _timed_requests(c: openai.OpenAI, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        r = c.chat.completions.create(model="mock-llm", messages=MESSAGES)
        assert "330 metres" in (r.choices[0].message.content or "")
    return time.perf_counter() - t0


def test_collector_down_responses_unchanged_and_drops_counted() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**ENV, "OTEL_EXPORTER_OTLP_TIMEOUT": "300"}
    with otlp_stack(dead, env=env) as (s, exporter):
        _timed_requests(client(s), 5)
        flush(s, exporter)
        failed = sample(s, "genai_sre_otlp_dropped_total", signal="traces", reason="export_failed")
        assert failed == 5
        assert sample(s, "genai_sre_otlp_dropped_total", signal="metrics", reason="export_failed") >= 1
        assert sample(s, "genai_sre_otlp_exported_total", signal="traces") == 0


def test_slow_collector_bounded_queue_keeps_the_proxy_fast() -> None:
    n = 20
    env = {**ENV, "OTEL_EXPORTER_OTLP_TIMEOUT": "300"}
    with receiver(delay_s=1.0) as rec, otlp_stack(rec.url, env=env, max_queue_size=2) as (s, exporter):
        c = client(s)
        with_slow = _timed_requests(c, n)
        s.idle()
        s.sidecar.sinks.remove(exporter)
        baseline = _timed_requests(c, n)
        s.idle()
        exporter.shutdown(2.0)
        dropped = sum(
            sample(s, "genai_sre_otlp_dropped_total", signal="traces", reason=r)
            for r in ("queue_full", "export_failed", "shutdown")
        )
        exported = sample(s, "genai_sre_otlp_exported_total", signal="traces")
    print(f"{n} requests: {with_slow:.3f}s with a slow collector, {baseline:.3f}s without export")
    assert dropped >= 1 and dropped + exported == n
    assert sample(s, "genai_sre_otlp_dropped_total", signal="traces", reason="queue_full") >= 1
    assert with_slow < 2 * baseline + 0.5


def test_no_api_key_or_content_in_any_payload_unless_capture_is_on() -> None:
    with receiver() as rec, otlp_stack(rec.url) as (s, exporter):
        r = client(s).chat.completions.create(model="mock-llm", messages=MESSAGES)
        answer = r.choices[0].message.content or ""
        flush(s, exporter)
    assert rec.raw and rec.spans() and rec.metrics()
    payload = b"".join(rec.raw) + repr(rec.headers).encode()
    for secret in (API_KEY, "SECRET0123", "zebra-quartz", "jane.doe", "Eiffel", answer[:24]):
        assert secret.encode() not in payload, secret

    with receiver() as rec, otlp_stack(rec.url, capture_content=True) as (s, exporter):
        client(s).chat.completions.create(model="mock-llm", messages=MESSAGES)
        flush(s, exporter)
    payload = b"".join(rec.raw) + repr(rec.headers).encode()
    assert API_KEY.encode() not in payload and b"jane.doe@example.com" not in payload
    (server,) = by_kind(rec, SERVER)
    a = attrs(server.attributes)
    assert "zebra-quartz-5150 mail " in a["gen_ai.input.messages"]  # content kept, the e-mail address redacted
    assert "330 metres" in a["gen_ai.output.messages"]
