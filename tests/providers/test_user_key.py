"""The end user or session of a request becomes a pseudonymous key on the exchange, never the raw value."""

from __future__ import annotations

import json

from tests.factories import capture
from tests.providers.test_parsing import _parser

ANSWER = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}).encode()


def _chat(extra: dict[str, object], headers: dict[str, str] | None = None, **labels: object) -> str | None:
    req = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    cap = capture(request=req, response_body=ANSWER, request_headers=headers or {})
    return _parser(**labels).parse(cap).user_key


def test_openai_user_field_safety_identifier_and_session_header() -> None:
    alice = _chat({"user": "alice@example.com"})
    assert alice is not None and "alice" not in alice and len(alice) == 16
    assert _chat({"user": "alice@example.com"}) == alice  # stable: one user, one unit
    assert _chat({"user": "bob"}) not in (None, alice)
    assert _chat({"safety_identifier": "alice@example.com"}) == alice
    session = _chat({}, headers={"x-session-id": "s-42"})
    assert session is not None and session != alice
    assert _chat({"user": "alice@example.com"}, headers={"x-session-id": "s-42"}) == alice  # the user field wins
    assert _chat({}, headers={"x-conversation": "c1"}, session_header="x-conversation") is not None
    assert _chat({}, headers={"x-session-id": "s-42"}, session_header="") is None
    assert _chat({}) is None


def test_anthropic_metadata_user_id() -> None:
    req = {"model": "claude", "max_tokens": 10, "metadata": {"user_id": "u-7"},
           "messages": [{"role": "user", "content": "hi"}]}
    body = json.dumps({"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"}).encode()
    ex = _parser().parse(capture(route="/v1/messages", request=req, response_body=body, upstream="an"))
    assert ex.user_key is not None and "u-7" not in ex.user_key
