"""One place to build the records tests need: `exchange()`, `capture()`, `evaluation()`; keywords override."""

from __future__ import annotations

import time
from typing import Any

from genai_sre.events import Capture, ContextPart, Evaluation, Exchange, Finding, Message

__all__ = ["capture", "evaluation", "exchange"]


def exchange(**overrides: Any) -> Exchange:
    """A successful, non-streaming OpenAI chat exchange grounded in one document, unless overridden."""
    question = overrides.pop("question", "How tall is the Eiffel Tower?")
    answer = overrides.pop("answer", "The Eiffel Tower is 330 metres tall.")
    context = overrides.pop("context", "The Eiffel Tower in Paris is 330 metres tall.")
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
        "messages": (Message("system", context), Message("user", question)),
        "context": (ContextPart("system", context),) if context else (),
        "question": question,
        "answer": answer,
    }
    fields.update(overrides)
    return Exchange(**fields)


def capture(**overrides: Any) -> Capture:
    fields: dict[str, Any] = {
        "id": "cap-1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "route": "/v1/chat/completions",
        "upstream": "up",
        "request_headers": {"content-type": "application/json"},
        "request_body": b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
        "status": 200,
        "response_headers": {"content-type": "application/json"},
        "response_body": b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}}]}',
        "started_at": time.time(),
        "t_received": time.monotonic(),
    }
    fields.update(overrides)
    return Capture(**fields)


def evaluation(findings: tuple[Finding, ...] = (), **exchange_overrides: Any) -> Evaluation:
    return Evaluation(exchange=exchange(**exchange_overrides), findings=findings)
