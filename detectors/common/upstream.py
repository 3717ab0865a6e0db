"""Reading the answer out of an upstream's JSON reply, for detectors that call the upstream themselves."""

from __future__ import annotations

import json

__all__ = ["answer_text"]


def answer_text(raw: bytes) -> str | None:
    """The answer of an OpenAI chat completion or an Anthropic message.

    None when the body is neither; "" when the reply carries no text (a tool call, an empty message).
    """
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""
    content = data.get("content")
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return None
