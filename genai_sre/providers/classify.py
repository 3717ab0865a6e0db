"""What a request is, decided once per (route, upstream) and carried in its `Capture`.

The proxy labels its request counters and duration histogram with it, and the
parser, the token and latency histograms, spans and detectors use the same
answer, so every metric of one request agrees on its provider and operation.

- `dialect`: how the bodies are read, `anthropic` for an `anthropic` upstream
  or a `/v1/messages` route on an `auto` one, else `openai` (OpenAI, Azure
  OpenAI, vLLM and llama.cpp all speak it).
- `provider`: `gen_ai.provider.name`: the configured provider (`azure` is
  `azure.ai.openai`, `llamacpp` is `llama.cpp`), or for `auto` the dialect's.
- `operation`: `gen_ai.operation.name` from the route: `chat`,
  `text_completion`, `embeddings`, or `other`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from genai_sre.config import UpstreamConfig
from genai_sre.events import Classification

__all__ = ["Classifier", "classify"]

_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "vllm": "vllm",
    "llamacpp": "llama.cpp",
}
_OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}


def classify(route: str, upstream: UpstreamConfig | None) -> Classification:
    provider = upstream.provider if upstream is not None else "auto"
    anthropic = provider == "anthropic" or (provider == "auto" and route.endswith("/messages"))
    dialect: Literal["openai", "anthropic"] = "anthropic" if anthropic else "openai"
    name = _PROVIDERS.get(provider) or dialect
    host: str | None = None
    port: int | None = None
    if upstream is not None:
        parts = urlsplit(upstream.url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    return Classification(
        provider=name, operation=_OPERATIONS.get(route, "other"), dialect=dialect, server_address=host,
        server_port=port,
    )  # fmt: skip


class Classifier:
    """`classify()` with a bounded cache (routes are bounded labels, upstreams come from the config)."""

    def __init__(self, upstreams: Sequence[UpstreamConfig]) -> None:
        self._upstreams = {u.name: u for u in upstreams}
        self._cache: dict[tuple[str, str], Classification] = {}

    def __call__(self, route: str, upstream: str) -> Classification:
        key = (route, upstream)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = classify(route, self._upstreams.get(upstream))
        return found
