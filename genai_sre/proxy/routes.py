"""The upstream table: which upstream serves a request, and the bounded route label."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
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
    """Maps free values (models, tenants, groups) to a bounded set of label values; the rest are `other`.

    With an allow-list, only its values get a label of their own. Without one, at most `cap`
    values hold a slot, and a slot is *earned*: only `credit()` (called for successful requests,
    i.e. values the upstream accepted) counts, and when the slots are full a value takes the slot of
    the least used one only once it has been used more (space-saving heavy hitters, with counts
    halved every `half_life_s`). A client sending made-up values cannot take slots from the values
    real traffic uses: made-up models fail upstream and earn nothing, and a used value keeps its slot.
    Counters never lose a series, so values are admitted at most `2 * cap` times in a process's life:
    the exported series stay bounded even under churn.
    """

    def __init__(
        self,
        allowed: Sequence[str] = (),
        cap: int = 20,
        half_life_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = frozenset(allowed)
        self._cap = cap
        self._half_life = half_life_s
        self._clock = clock
        self._slots: dict[str, float] = {}
        self._candidates: dict[str, float] = {}
        self._admissions = 0
        self._decayed_at = clock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "none"
        if self._fixed:
            return value if value in self._fixed else "other"
        return value if value in self._slots else "other"

    def observe(self, value: str | None, earned: bool = True) -> str:
        """Credit `value` when `earned`, then return its label."""
        if earned and value:
            self.credit(value)
        return self(value)

    def credit(self, value: str) -> None:
        if self._fixed:
            return
        now = self._clock()
        if now - self._decayed_at >= self._half_life:
            self._decay(now)
        slots = self._slots
        if value in slots:
            slots[value] += 1.0
            return
        if self._admissions >= 2 * self._cap:
            return  # the lifetime bound on exported values is reached: the current slots stay
        if len(slots) < self._cap:
            slots[value] = 1.0
            self._admissions += 1
            return
        cands = self._candidates
        if value in cands:
            cands[value] += 1.0
        elif len(cands) < 2 * self._cap:
            cands[value] = 1.0
        else:  # space-saving: the newcomer inherits the smallest candidate count
            low = min(cands, key=cands.__getitem__)
            cands[value] = cands.pop(low) + 1.0
        weakest = min(slots, key=slots.__getitem__)
        if cands[value] > slots[weakest] + 1.0:
            slots[value] = cands.pop(value)
            cands[weakest] = slots.pop(weakest)
            self._admissions += 1

    def _decay(self, now: float) -> None:
        halvings = int((now - self._decayed_at) // self._half_life)
        factor = 0.5 ** min(halvings, 60)
        for table in (self._slots, self._candidates):
            for k in table:
                table[k] *= factor
        self._decayed_at = now


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
