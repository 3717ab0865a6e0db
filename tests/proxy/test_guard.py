"""Guard mode: off by default; when on, a risk header on non-streaming answers and optional refusals."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from genai_sre.config import GuardConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from tests.harness import stack

pytestmark = pytest.mark.integration

BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "The Golden Gate Bridge opened in May 1937. Its main span is 1280 metres long."},
        {"role": "user", "content": "When did the Golden Gate Bridge open and how long is its main span?"},
    ],
}


def fixed_risk(context: str, question: str, answer: str) -> tuple[float, str]:
    return (0.9 if "1937" in context else 0.1), "fixed"


def _scenario(invent: float) -> Scenario:
    return Scenario(phases=(Phase(name="p", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000, invent_rate=invent),))


def _guard(**kw):  # type: ignore[no-untyped-def]
    def cfg(c):  # type: ignore[no-untyped-def]
        return replace(c, proxy=replace(c.proxy, guard=GuardConfig(enabled=True, **kw)))

    return cfg


def test_off_by_default_adds_nothing() -> None:
    with stack(_scenario(0.0)) as s:
        r = httpx.post(s.proxy_url + "/v1/chat/completions", json=BODY)
        assert "x-genai-sre-hallucination-risk" not in r.headers


def test_header_and_refusal_with_a_configured_scorer() -> None:
    cfg = _guard(routes={"/v1/chat/completions": 0.5}, action="refuse", scorer="tests.proxy.test_guard:fixed_risk")
    with stack(_scenario(0.0), configure=cfg) as s:
        r = httpx.post(s.proxy_url + "/v1/chat/completions", json=BODY)
        assert r.headers["x-genai-sre-hallucination-risk"] == "0.900"
        assert r.headers["x-genai-sre-guard"] == "refused"
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "content_filter" and "reliable answer" in choice["message"]["content"]
        streamed = httpx.post(s.proxy_url + "/v1/chat/completions", json={**BODY, "stream": True})
        assert "x-genai-sre-hallucination-risk" not in streamed.headers and b"1937" in streamed.content


def test_builtin_scorer_rates_invented_answers_higher() -> None:
    cfg = _guard(routes={"/v1/chat/completions": 0.99}, action="header")
    risks = {}
    for invent in (0.0, 1.0):
        with stack(_scenario(invent), configure=cfg) as s:
            r = httpx.post(s.proxy_url + "/v1/chat/completions", json=BODY, timeout=30)
            risks[invent] = float(r.headers["x-genai-sre-hallucination-risk"])
            assert "x-genai-sre-guard" not in r.headers
    assert risks[1.0] > risks[0.0] + 0.2, risks


@pytest.mark.parametrize(
    "request_body",
    [b"[" * 100000 + b"]" * 100000, b'{"messages": 5}', b'{"model": "m", "messages": [{"role": "user"}]}'],
)
def test_unreadable_bodies_pass_through(request_body: bytes) -> None:
    import asyncio

    from genai_sre.proxy.guard import Guard

    guard = Guard(
        GuardConfig(enabled=True, routes={"/v1/chat/completions": 0.1, "/v1/messages": 0.1}, action="refuse"),
        scorer=fixed_risk,
    )
    odd_answer = b'{"choices": [{"message": {"content": "x", "tool_calls": ["oops"]}}]}'
    for route, anthropic in (("/v1/chat/completions", False), ("/v1/messages", True)):
        verdict = asyncio.run(guard.check(route, request_body, odd_answer, anthropic))
        assert verdict is None or not verdict.refused or verdict.body != odd_answer
