"""Guard mode (opt-in): score a non-streaming answer before it reaches the client.

Off by default. When a route has a threshold, the proxy waits for the risk
score of each non-streaming JSON answer (the scorer runs in a worker thread, so
other requests keep flowing), adds `x-genai-sre-hallucination-risk` to the
response, and with `action: refuse` replaces an answer at or above the
threshold with a refusal (`x-genai-sre-guard: refused`). Streams are forwarded
untouched: their headers leave before the answer exists. The scorer is any
`(context, question, answer) -> (risk, explanation)` callable named by an entry
point in `genai_sre.guard_scorers` or an import string; the built-in one
(`hallucination`) is the hallucination detector's lexical path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from genai_sre.config import GuardConfig
from genai_sre.plugins import resolve
from genai_sre.providers import anthropic, openai

__all__ = ["Guard", "GuardVerdict"]

logger = logging.getLogger(__name__)

Scorer = Callable[[str, str, str], tuple[float, str]]
SCORER_GROUP = "genai_sre.guard_scorers"


@dataclass(frozen=True)
class GuardVerdict:
    risk: float
    refused: bool
    body: bytes


class Guard:
    def __init__(self, config: GuardConfig, scorer: Scorer | None = None) -> None:
        self.config = config
        self.scorer: Scorer = scorer or resolve(SCORER_GROUP, config.scorer)

    def threshold(self, route: str) -> float | None:
        return self.config.routes.get(route) if self.config.enabled else None

    async def check(
        self, route: str, request_body: bytes, response_body: bytes, anthropic_dialect: bool
    ) -> GuardVerdict | None:
        threshold = self.threshold(route)
        if threshold is None:
            return None
        # Isolation boundary: whatever the client or the upstream sent, a body the guard cannot read
        # or a scorer that fails passes the upstream's answer through unchanged.
        try:
            req = json.loads(request_body)
            resp = json.loads(response_body)
            if not isinstance(req, dict) or not isinstance(resp, dict):
                return None
            module = anthropic if anthropic_dialect else openai
            view = module.parse_request(route, req)
            answer = module.parse_response(route, response_body, False).answer
            if not answer:
                return None
            # The grounding is what the application supplied besides the question itself.
            question = view.question.strip()
            context = "\n\n".join(p.text for p in view.context if not (p.kind == "user" and p.text.strip() == question))
            risk, _ = await asyncio.to_thread(self.scorer, context, view.question, answer)
        except Exception:
            logger.warning("guard skipped an answer on route %s", route, exc_info=True)
            return None
        if risk < threshold or self.config.action != "refuse":
            return GuardVerdict(risk, False, response_body)
        return GuardVerdict(risk, True, _refuse(resp, self.config.refusal_message, anthropic_dialect))


def _refuse(resp: dict[str, object], message: str, anthropic_dialect: bool) -> bytes:
    if anthropic_dialect:
        resp["content"] = [{"type": "text", "text": message}]
    else:
        choices = resp.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    choice["message"]["content"] = message
                    choice["message"].pop("tool_calls", None)
                    choice["finish_reason"] = "content_filter"
    return json.dumps(resp).encode()
