"""Cached, cache-write and reasoning token counts, the end user and the conversation id, per dialect."""

from __future__ import annotations

from genai_sre.config import LabelsConfig
from genai_sre.providers import ExchangeParser
from tests.factories import capture
from tests.providers.test_parsing import TIMED, UP


def _parse(route: str, request: dict, response: dict, upstream: str = "up", headers: dict | None = None):  # type: ignore[no-untyped-def]
    parser = ExchangeParser(UP, LabelsConfig())
    sent = capture(
        route=route, upstream=upstream, request=request, response=response, request_headers=headers or {}, **TIMED
    )
    return parser.parse(sent)


def test_openai_chat_cached_and_reasoning_tokens() -> None:
    ex = _parse(
        "/v1/chat/completions",
        {"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}], "user": "alice@example.com"},
        {
            "id": "c1",
            "model": "o4-mini-2025-04-16",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
        },
    )
    u = ex.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens) == (1200, 300, 1024, 256)
    assert u.cache_write_tokens is None and not u.estimated
    assert ex.user == "alice@example.com"


def test_openai_responses_details_and_conversation() -> None:
    ex = _parse(
        "/v1/responses",
        {"model": "gpt-5", "input": "hi", "conversation": {"id": "conv_123"}},
        {
            "id": "resp_1",
            "model": "gpt-5-2025-08-07",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "hello"}]}],
            "usage": {
                "input_tokens": 50,
                "output_tokens": 40,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 32},
            },
        },
    )
    assert (ex.usage.cache_read_tokens, ex.usage.reasoning_tokens) == (0, 32)
    assert ex.conversation_id == "conv_123"


def test_anthropic_cache_fields_are_added_to_the_input_total() -> None:
    ex = _parse(
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
         "metadata": {"user_id": "u-42"}},
        {
            "id": "msg_1",
            "type": "message",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 20,
                "output_tokens": 5,
                "cache_read_input_tokens": 3000,
                "cache_creation_input_tokens": 500,
            },
        },
        upstream="an",
        headers={"x-conversation-id": "session-9"},
    )
    u = ex.usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens) == (3520, 3000, 500, 5)
    assert ex.user == "u-42" and ex.conversation_id == "session-9"


def test_malformed_details_are_ignored() -> None:
    ex = _parse(
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": "lots"},
                      "completion_tokens_details": {"reasoning_tokens": -4}},
        },
    )
    assert ex.usage.input_tokens == 3 and ex.usage.cache_read_tokens is None and ex.usage.reasoning_tokens is None
