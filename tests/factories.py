"""One place to build the records tests need: `exchange()`, `capture()`, `evaluation()`; keywords override.

Every keyword is a field of the record, except the few conveniences each factory documents. A test
module that needs one shape many times builds it once (`BASE = exchange(...)`) and varies it with
`dataclasses.replace`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from genai_sre.events import Capture, ContextPart, DetectorOutcome, Evaluation, Exchange, Finding, Message

__all__ = ["capture", "evaluation", "exchange"]


def exchange(**overrides: Any) -> Exchange:
    """A successful, non-streaming OpenAI chat exchange grounded in one document, unless overridden.

    `question`, `answer` and `context` also make the default `messages`. `context` is either the
    grounding text (one system part and message before the user's question; "" for none) or the
    `ContextPart`s themselves (then `messages` defaults to the question alone).
    """
    question = overrides.pop("question", "How tall is the Eiffel Tower?")
    answer = overrides.pop("answer", "The Eiffel Tower is 330 metres tall.")
    context = overrides.pop("context", "The Eiffel Tower in Paris is 330 metres tall.")
    if not isinstance(context, str):
        parts = tuple(context)
        overrides.setdefault("messages", (Message("user", question),))
        overrides.setdefault("context", parts)
        context = ""
    fields: dict[str, Any] = {
        "id": "ex-1",
        "started_at": time.time(),
        "provider": "openai",
        "operation": "chat",
        "route": "/v1/chat/completions",
        "upstream": "up",
        "status": 200,
        "stream": False,
        "model": "gpt-4o",
        "messages": (*((Message("system", context),) if context else ()), Message("user", question)),
        "context": (ContextPart("system", context),) if context else (),
        "question": question,
        "answer": answer,
    }
    fields.update(overrides)
    return Exchange(**fields)


def capture(
    *,
    request: Mapping[str, Any] | None = None,
    response: Mapping[str, Any] | None = None,
    sse: bool = False,
    **overrides: Any,
) -> Capture:
    """A POST to the OpenAI chat route and its JSON answer, unless overridden.

    `request` and `response` are JSON bodies (encoded into `request_body` and `response_body`); `sse`
    marks the answer as an event stream; `path` follows `route`; when `t_first_byte` is given and
    `chunks` is not, the whole answer arrived in one chunk at `t_first_byte`.
    """
    fields: dict[str, Any] = {
        "id": "cap-1",
        "method": "POST",
        "path": overrides.get("route", "/v1/chat/completions"),
        "route": "/v1/chat/completions",
        "upstream": "up",
        "request_headers": {"content-type": "application/json"},
        "request_body": b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
        "status": 200,
        "response_headers": {"content-type": "text/event-stream" if sse else "application/json"},
        "response_body": b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}}]}',
        "started_at": time.time(),
        "t_received": time.monotonic(),
    }
    if request is not None:
        fields["request_body"] = json.dumps(request).encode()
    if response is not None:
        fields["response_body"] = json.dumps(response).encode()
    fields.update(overrides)
    if fields.get("t_first_byte") is not None and "chunks" not in overrides:
        fields["chunks"] = ((len(fields["response_body"]), fields["t_first_byte"]),)
    return Capture(**fields)


def evaluation(
    findings: tuple[Finding, ...] = (),
    outcomes: Mapping[str, DetectorOutcome] | None = None,
    *,
    supplement: bool = False,
    **exchange_overrides: Any,
) -> Evaluation:
    """An evaluation of `exchange(**exchange_overrides)` with `findings` and detector `outcomes`."""
    return Evaluation(exchange(**exchange_overrides), findings, dict(outcomes or {}), supplement)
