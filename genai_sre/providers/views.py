"""What a dialect parser extracts from a request and a response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genai_sre.events import ContextPart, Message, ToolCall

__all__ = ["RequestView", "ResponseView", "nonempty", "text_of"]


@dataclass
class RequestView:
    operation: str = "other"
    model: str | None = None
    stream: bool = False
    messages: list[Message] = field(default_factory=list)
    context: list[ContextPart] = field(default_factory=list)
    question: str = ""
    params: dict[str, float | int | str | bool] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    conversation_id: str | None = None


@dataclass
class ResponseView:
    answer: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_excludes_cache: bool = False  # Anthropic: `input_tokens` leaves the cache reads and writes out
    logprobs: list[float] | None = None
    response_model: str | None = None
    response_id: str | None = None
    first_content_offset: int | None = None  # byte offset of the first content token in a stream
    error: str | None = None


PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "n",
)


def text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with `text` (OpenAI and Anthropic shapes)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif part.get("type") == "tool_result":
                    out.append(text_of(part.get("content")))
                elif part.get("type") == "document":
                    src = part.get("source") or {}
                    if isinstance(src, dict) and isinstance(src.get("data"), str) and src.get("type") == "text":
                        out.append(src["data"])
                    elif isinstance(src, dict) and src.get("type") == "content":
                        out.append(text_of(src.get("content")))
        return "\n".join(t for t in out if t)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    return ""


def request_params(obj: dict[str, Any]) -> dict[str, float | int | str | bool]:
    out: dict[str, float | int | str | bool] = {}
    for key in PARAMS:
        value = obj.get(key)
        if isinstance(value, (int, float, str, bool)):
            out[key] = value
    return out


def nonempty(value: Any) -> str | None:
    """The value when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None
