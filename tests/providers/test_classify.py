"""One classification per request: the proxy's metrics and the parser's agree on provider and operation."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from genai_sre.config import UpstreamConfig
from genai_sre.providers.classify import classify
from tests.harness import stack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("provider", "route", "expected"),
    [
        ("vllm", "/v1/chat/completions", ("vllm", "chat", "openai")),
        ("auto", "/v1/messages", ("anthropic", "chat", "anthropic")),
        ("auto", "/v1/chat/completions", ("openai", "chat", "openai")),
        ("azure", "/v1/chat/completions", ("azure.ai.openai", "chat", "openai")),
        ("llamacpp", "/v1/completions", ("llama.cpp", "text_completion", "openai")),
        ("anthropic", "/v1/other", ("anthropic", "other", "anthropic")),
    ],
)
def test_classify(provider: str, route: str, expected: tuple[str, str, str]) -> None:
    kind = classify(route, UpstreamConfig(name="u", url="https://api.example.com:8443/base", provider=provider))  # type: ignore[arg-type]
    assert (kind.provider, kind.operation, kind.dialect) == expected
    assert (kind.server_address, kind.server_port) == ("api.example.com", 8443)


@pytest.mark.parametrize(("provider", "path", "expected"), [("vllm", "/v1/chat/completions", "vllm"),
                                                             ("auto", "/v1/messages", "anthropic")])
def test_proxy_and_parser_label_a_request_alike(provider: str, path: str, expected: str) -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        return replace(c, upstreams=(replace(c.upstreams[0], provider=provider),))

    body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello."}]}
    with stack(configure=cfg) as s:
        assert httpx.post(s.proxy_url + path, json=body, timeout=10).status_code == 200
        s.idle()
        metrics = httpx.get(s.admin_url + "/metrics").text
    providers = {
        name: set(re.findall(rf'^{name}_count{{[^}}]*gen_ai_provider_name="([^"]+)"', metrics, re.M))
        for name in ("gen_ai_server_request_duration_seconds", "gen_ai_client_token_usage")
    }
    assert providers["gen_ai_server_request_duration_seconds"] == {expected}
    assert providers["gen_ai_client_token_usage"] == {expected}
