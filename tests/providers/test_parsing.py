"""Every dialect, streaming and not, from recorded payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genai_sre.config import LabelsConfig, UpstreamConfig
from genai_sre.providers import ExchangeParser
from tests.factories import capture

FIXTURES = Path(__file__).parent / "fixtures"
UP = (
    UpstreamConfig(name="up", url="https://api.openai.com"),
    UpstreamConfig(name="an", url="https://api.anthropic.com", provider="anthropic"),
)


# the clocks of a capture: sent upstream after 1 ms, first byte after 0.1 s, last byte after 1 s
TIMED = {"started_at": 1000.0, "t_received": 10.0, "t_upstream_sent": 10.001, "t_first_byte": 10.1, "t_last_byte": 11.0}


def _parser(estimate_tokens: bool = False, **labels: Any) -> ExchangeParser:
    return ExchangeParser(UP, LabelsConfig(**labels), estimate_tokens=estimate_tokens)


def test_openai_chat_non_streaming_with_rag_context_and_logprobs() -> None:
    req = {
        "model": "gpt-4o",
        "temperature": 0.2,
        "max_tokens": 50,
        "user": "u-1",
        "messages": [
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": [{"type": "text", "text": "Doc: Mount Fuji is 3776 m high."}]},
            {"role": "assistant", "content": "Noted."},
            {"role": "tool", "tool_call_id": "c1", "content": "search result: Fuji last erupted in 1707"},
            {"role": "user", "content": "How high is Mount Fuji?"},
        ],
    }
    resp = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "It is 3776 m high."},
                "logprobs": {"content": [{"token": "It", "logprob": -0.01}, {"token": " is", "logprob": -0.2}]},
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47},
    }
    ex = _parser().parse(capture(request=req, response=resp, **TIMED))
    assert ex.operation == "chat" and ex.provider == "openai" and not ex.stream
    assert ex.model == "gpt-4o" and ex.response_model == "gpt-4o-2024-08-06" and ex.response_id == "chatcmpl-1"
    assert ex.question == "How high is Mount Fuji?"
    kinds = [p.kind for p in ex.context]
    assert kinds == ["system", "user", "assistant", "tool", "user"]
    assert "3776" in ex.context_text and "1707" in ex.context_text
    assert ex.answer == "It is 3776 m high." and ex.finish_reason == "stop"
    assert ex.usage.input_tokens == 40 and ex.usage.output_tokens == 7 and not ex.usage.estimated
    assert ex.logprobs == (-0.01, -0.2)
    assert ex.request_params == {"temperature": 0.2, "max_tokens": 50}
    assert ex.ttft_s is not None and abs(ex.ttft_s - 0.1) < 1e-9 and ex.duration_s == 1.0
    assert ex.tpot_s is not None and abs(ex.tpot_s - 0.9 / 6) < 1e-9
    assert ex.server_address == "api.openai.com" and ex.server_port == 443


def test_openai_stream_with_tool_calls_and_usage_chunk() -> None:
    body = (FIXTURES / "openai_chat_stream_tools.txt").read_bytes()
    ex = _parser().parse(
        capture(request={"model": "gpt-4o-mini", "stream": True, "messages": []}, response_body=body, sse=True, **TIMED)
    )
    assert ex.stream and ex.answer == ""
    assert [(t.name, t.arguments, t.id) for t in ex.tool_calls] == [("get_weather", '{"city":"Paris"}', "call_9x")]
    assert ex.finish_reason == "tool_calls"
    assert ex.usage.input_tokens == 81 and ex.usage.output_tokens == 15


def test_stream_ttft_is_time_of_first_content_delta() -> None:
    body = (FIXTURES / "openai_chat_stream_logprobs.txt").read_bytes()
    first_end = body.index(b"\n\n") + 2  # the role chunk
    chunks = ((first_end, 10.05), (first_end + 10, 10.5), (len(body), 10.9))
    streamed = capture(
        request={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Capital of France?"}]},
        response_body=body,
        sse=True,
        chunks=chunks,
        **TIMED,
    )
    ex = _parser().parse(streamed)
    assert ex.answer == "Paris."
    assert ex.logprobs == (-0.0012, -0.31)
    assert ex.ttft_s is not None and abs(ex.ttft_s - 0.9) < 1e-9  # "Paris" ended in the last chunk
    # no usage in the stream: nothing is invented unless estimates are asked for, and then they are marked
    assert ex.usage.input_tokens is None and ex.usage.output_tokens is None and ex.tpot_s is None
    estimated = _parser(estimate_tokens=True).parse(streamed)
    assert estimated.usage.estimated and estimated.usage.output_tokens and estimated.usage.output_tokens >= 2


def test_anthropic_stream_with_tool_use() -> None:
    body = (FIXTURES / "anthropic_stream_tool_use.txt").read_bytes()
    req = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "stream": True,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "SF is foggy in summer."},
                    },
                    {"type": "text", "text": "Weather in SF?"},
                ],
            }
        ],
    }
    streamed = capture(route="/v1/messages", upstream="an", request=req, response_body=body, sse=True, **TIMED)
    ex = _parser().parse(streamed)
    assert ex.provider == "anthropic" and ex.stream
    assert ex.answer == "Let me check the weather."
    assert ex.tool_calls[0].name == "get_weather" and json.loads(ex.tool_calls[0].arguments) == {
        "location": "San Francisco"
    }
    assert ex.finish_reason == "tool_use" and ex.usage.input_tokens == 472 and ex.usage.output_tokens == 89
    assert ex.question == "Weather in SF?"
    assert [p.kind for p in ex.context] == ["system", "document", "user"]


def test_anthropic_non_streaming_with_tool_result_context() -> None:
    req = {
        "model": "claude-x",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "What's the weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "15 degrees and rain"}],
            },
        ],
    }
    resp = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-x",
        "content": [{"type": "text", "text": "15 degrees, rainy."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 30, "output_tokens": 5},
    }
    ex = _parser().parse(capture(route="/v1/messages", upstream="an", request=req, response=resp, **TIMED))
    assert ex.answer == "15 degrees, rainy." and ex.finish_reason == "end_turn"
    assert any(p.kind == "tool" and "15 degrees" in p.text for p in ex.context)


def test_responses_api_stream_and_object() -> None:
    body = (FIXTURES / "openai_responses_stream.txt").read_bytes()
    req = {
        "model": "gpt-4.1",
        "stream": True,
        "instructions": "Be exact.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is six times seven?"}]}],
    }
    ex = _parser().parse(capture(route="/v1/responses", request=req, response_body=body, sse=True, **TIMED))
    assert ex.answer == "The answer is 42." and ex.response_model == "gpt-4.1-2025-04-14"
    assert ex.usage.output_tokens == 6 and ex.question == "What is six times seven?"
    assert ex.context[0].kind == "system"


def test_embeddings_and_unparsable_bodies_do_not_raise() -> None:
    emb = {"object": "list", "data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    ex = _parser().parse(capture(route="/v1/embeddings", request={"model": "e", "input": "hi"}, response=emb, **TIMED))
    assert ex.operation == "embeddings" and ex.usage.input_tokens == 3
    bad = _parser().parse(capture(request={"model": "m"}, response_body=b"<html>oops", **TIMED))
    assert bad.error == "unparsable_response" and bad.answer == ""


def test_labels_from_headers_and_metadata_are_bounded() -> None:
    labels = {
        "group_headers": {"region": "x-region"},
        "group_metadata": ("gender",),
        "group_values": {"gender": ("female", "male")},
        "tenants": ("acme",),
    }
    p = _parser(**labels)
    req = {"model": "m", "metadata": {"gender": "Female"}, "messages": [{"role": "user", "content": "hi"}]}
    ex = p.parse(
        capture(
            request=req,
            response_body=b"{}",
            request_headers={"x-tenant": "acme", "x-region": "EU", "x-model-version": "v2"},
            **TIMED,
        )
    )
    assert ex.labels == {"tenant": "acme", "group.region": "eu", "group.gender": "female", "model_version": "v2"}
    req["metadata"] = {"gender": "unlisted-value"}
    ex = p.parse(capture(request=req, response_body=b"{}", request_headers={"x-tenant": "someone-else"}, **TIMED))
    assert ex.labels == {"tenant": "other", "group.gender": "other"}
