from __future__ import annotations

import json
from dataclasses import replace

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from genai_sre.events import Evaluation, Finding, TraceIds, Usage
from genai_sre.storage.redact import redact
from genai_sre.telemetry.spans import SpanBuilder
from tests.factories import exchange

TRACE = TraceIds(
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    server_span_id="00f067aa0ba902b7",
    upstream_span_id="b7ad6b7169203331",
    parent_span_id="a2fb4a1d1a96d312",
)


# a streamed chat answer with usage, request parameters and the client's trace context
STREAMED = exchange(
    id="req-1",
    started_at=1_700_000_000.0,
    upstream="mock",
    stream=True,
    model="gpt-4o-mini",
    response_model="gpt-4o-mini-2024",
    response_id="chatcmpl-1",
    context="",
    question="Mail me at jane@example.com about the zebra",
    answer="The zebra is striped.",
    finish_reason="stop",
    usage=Usage(12, 5),
    ttft_s=0.25,
    duration_s=1.5,
    upstream_duration_s=1.4,
    request_params={"temperature": 0.2, "max_completion_tokens": 64, "n": 1, "seed": 7},
    server_address="api.example.com",
    server_port=443,
    trace=TRACE,
)


FINDING = Finding(
    name="hallucination_risk",
    score=0.82,
    label="flagged",
    explanation="risk 0.82: e.g. zebra",
    features=(("unsupported_content_ratio", 0.31),),
    detector="hallucination",
)


def builder(capture: bool = False, sampler: object = None) -> SpanBuilder:
    return SpanBuilder(Resource.create({"service.name": "t"}), sampler or ParentBased(ALWAYS_ON), capture, redact)  # type: ignore[arg-type]


def test_server_and_upstream_spans_carry_the_wire_ids_and_genai_attributes() -> None:
    server, upstream = builder().build(Evaluation(STREAMED, (FINDING,)), now_ns=1)
    assert server.name == upstream.name == "chat gpt-4o-mini"
    assert server.kind is SpanKind.SERVER and upstream.kind is SpanKind.CLIENT
    assert server.context is not None and upstream.context is not None and server.parent is not None
    assert server.context.trace_id == upstream.context.trace_id == int(TRACE.trace_id, 16)
    assert server.context.span_id == int(TRACE.server_span_id, 16)
    assert server.parent.span_id == int(TRACE.parent_span_id or "", 16) and server.parent.is_remote
    assert upstream.context.span_id == int(TRACE.upstream_span_id, 16)
    assert upstream.parent is not None and upstream.parent.span_id == server.context.span_id
    assert server.start_time == 1_700_000_000_000_000_000
    assert server.end_time == server.start_time + 1_500_000_000
    assert upstream.end_time == server.end_time and upstream.start_time == server.end_time - 1_400_000_000
    a = dict(server.attributes or {})
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_chunk"] == 0.25
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.seed"] == 7 and "gen_ai.request.choice.count" not in a
    assert a["server.address"] == "api.example.com" and a["server.port"] == 443
    assert "error.type" not in a and server.status.status_code is StatusCode.UNSET
    (event,) = server.events
    assert event.name == "gen_ai.evaluation.result"
    e = dict(event.attributes or {})
    assert e["gen_ai.evaluation.name"] == "hallucination_risk"
    assert e["gen_ai.evaluation.score.value"] == 0.82 and e["gen_ai.evaluation.score.label"] == "flagged"
    assert e["gen_ai.response.id"] == "chatcmpl-1"
    assert e["genai_sre.evaluation.features"] == ("unsupported_content_ratio=0.31",)
    assert "gen_ai.evaluation.explanation" not in e  # may quote the answer: content
    assert not upstream.events


def test_no_content_unless_captured_and_then_redacted() -> None:
    server, upstream = builder().build(Evaluation(STREAMED, (FINDING,)), now_ns=1)
    for span in (server, upstream):
        assert "zebra" not in json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})
    server, upstream = builder(capture=True).build(Evaluation(STREAMED, (FINDING,)), now_ns=1)
    a = dict(server.attributes or {})
    inputs = json.loads(str(a["gen_ai.input.messages"]))
    assert inputs == [
        {"role": "user", "parts": [{"type": "text", "content": "Mail me at [EMAIL] about the zebra"}]}
    ]
    outputs = json.loads(str(a["gen_ai.output.messages"]))
    assert outputs[0]["parts"][0]["content"] == "The zebra is striped." and outputs[0]["finish_reason"] == "stop"
    assert dict(server.events[0].attributes or {})["gen_ai.evaluation.explanation"] == "risk 0.82: e.g. zebra"
    assert "gen_ai.input.messages" not in dict(upstream.attributes or {})


def test_failed_request_sets_error_type_and_status() -> None:
    ex = replace(STREAMED, status=502, error="connect", stream=False, ttft_s=None, answer="", finish_reason=None)
    server, upstream = builder().build(Evaluation(ex), now_ns=1)
    for span in (server, upstream):
        assert dict(span.attributes or {})["error.type"] == "connect"
        assert span.status.status_code is StatusCode.ERROR
    assert "gen_ai.request.stream" not in dict(server.attributes or {})
    http_error = replace(STREAMED, status=429, stream=False)
    server, _ = builder().build(Evaluation(http_error), now_ns=1)
    assert dict(server.attributes or {})["error.type"] == "429"


def test_sampler_follows_the_parent_flag_and_the_ratio() -> None:
    b = builder()
    assert b.sampled(STREAMED)
    unsampled = TraceIds(**{**{f: getattr(TRACE, f) for f in TRACE.__slots__}, "sampled": False})  # type: ignore[attr-defined]
    assert not b.sampled(replace(STREAMED, trace=unsampled))
    root = TraceIds(trace_id="0" * 31 + "1", server_span_id="1" * 16, upstream_span_id="2" * 16)
    assert builder(sampler=TraceIdRatioBased(0.5)).sampled(replace(STREAMED, trace=root))
    high = TraceIds(trace_id="f" * 32, server_span_id="1" * 16, upstream_span_id="2" * 16)
    assert not builder(sampler=TraceIdRatioBased(0.5)).sampled(replace(STREAMED, trace=high))


def test_exchange_without_trace_gets_stable_ids() -> None:
    a, _ = builder().build(Evaluation(replace(STREAMED, trace=None)), now_ns=1)
    b, _ = builder().build(Evaluation(replace(STREAMED, trace=None)), now_ns=1)
    assert a.context is not None and b.context is not None
    assert a.context.trace_id == b.context.trace_id and a.parent is None


def test_attribution_user_and_conversation_attributes() -> None:
    from genai_sre.telemetry.attribution import UserId

    ex = replace(
        STREAMED,
        labels={"tenant": "acme", "app": "shop"},
        user="alice@example.com",
        conversation_id="conv_1",
        usage=Usage(1200, 300, cache_read_tokens=1024, cache_write_tokens=0, reasoning_tokens=256),
    )
    hashed = SpanBuilder(Resource.create({}), ParentBased(ALWAYS_ON), False, redact, UserId("hashed", b"k"))
    server, upstream = hashed.build(Evaluation(ex), 1)
    a = dict(server.attributes or {})
    assert a["genai_sre.tenant"] == "acme" and a["genai_sre.app"] == "shop"
    assert a["gen_ai.conversation.id"] == "conv_1"
    assert a["user.id"] == UserId("hashed", b"k")("alice@example.com") and "alice" not in str(a["user.id"])
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1024 and a["gen_ai.usage.reasoning.output_tokens"] == 256
    assert "user.id" not in dict(upstream.attributes or {})
    omitted = SpanBuilder(Resource.create({}), ParentBased(ALWAYS_ON), False, redact, UserId("omit"))
    assert "user.id" not in dict(omitted.build(Evaluation(ex), 1)[0].attributes or {})
    anonymous = hashed.build(Evaluation(STREAMED), 1)[0]
    assert "user.id" not in dict(anonymous.attributes or {})
    assert dict(anonymous.attributes or {})["genai_sre.tenant"] == "none"
