"""The upstream table: which upstream serves a request, and the bounded route label."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from genai_sre.config import UpstreamConfig
from genai_sre.errors import ConfigError

__all__ = ["BoundedLabel", "UpstreamTable", "extract_model"]

_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


def extract_model(body: bytes) -> str | None:
    """The `model` of a JSON request body, found without parsing it (first 16 KiB only)."""
    m = _MODEL.search(body, 0, 16384)
    return m.group(1).decode("utf-8", "replace") if m else None


class BoundedLabel:
    """Maps free values to a bounded set: an allow-list, or the first `cap` values seen; the rest are `other`."""

    def __init__(self, allowed: Sequence[str] = (), cap: int = 20) -> None:
        self._fixed = bool(allowed)
        self._seen: set[str] = set(allowed)
        self._cap = cap

    def __call__(self, value: str | None) -> str:
        if not value:
            return "none"
        if value in self._seen:
            return value
        if not self._fixed and len(self._seen) < self._cap:
            self._seen.add(value)
            return value
        return "other"


@dataclass(frozen=True)
class Choice:
    upstream: UpstreamConfig
    base_path: str


class UpstreamTable:
    """Chooses the upstream for a path (longest configured prefix) or a model name."""

    def __init__(self, upstreams: Sequence[UpstreamConfig], routes: Sequence[str]) -> None:
        if not upstreams:
            raise ConfigError("no upstream configured: add one under `upstreams:` or pass --upstream URL")
        self.upstreams = tuple(upstreams)
        self.default = next((u for u in upstreams if not u.path_prefixes and not u.models), upstreams[0])
        self._prefixes = sorted(
            ((p, u) for u in upstreams for p in u.path_prefixes), key=lambda pu: len(pu[0]), reverse=True
        )
        self._models = {m: u for u in upstreams for m in u.models}
        self.by_model = bool(self._models)
        self._routes = tuple(sorted(routes, key=len, reverse=True))
        self._route_cache: dict[str, str] = {}

    def choose(self, path: str, model: str | None) -> UpstreamConfig:
        if model is not None and self._models:
            up = self._models.get(model)
            if up is not None:
                return up
        for prefix, up in self._prefixes:
            if path.startswith(prefix):
                return up
        return self.default

    def route(self, path: str) -> str:
        """The bounded `route` label: a configured route the path ends with, else `other`."""
        cached = self._route_cache.get(path)
        if cached is not None:
            return cached
        label = "other"
        for r in self._routes:
            # Azure OpenAI: /openai/deployments/<name>/chat/completions counts as /v1/chat/completions
            if path.endswith(r) or (r.startswith("/v1/") and path.endswith(r[3:])):
                label = r
                break
        if len(self._route_cache) < 4096:
            self._route_cache[path] = label
        return label
