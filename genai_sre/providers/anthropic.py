"""Anthropic Messages (`/v1/messages`), streaming or not."""

from __future__ import annotations

import json
from typing import Any

from genai_sre.events import ContextPart, Message, ToolCall
from genai_sre.providers.sse import iter_events
from genai_sre.providers.views import RequestView, ResponseView, nonempty, request_params, text_of

__all__ = ["parse_request", "parse_response"]


def parse_request(route: str, obj: dict[str, Any]) -> RequestView:
    view = RequestView(
        operation="chat", model=nonempty(obj.get("model")), stream=bool(obj.get("stream")), params=request_params(obj)
    )
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        view.user = meta["user_id"]
        view.metadata = {"user_id": meta["user_id"]}
    system = text_of(obj.get("system"))
    if system:
        view.messages.append(Message("system", system))
        view.context.append(ContextPart("system", system))
    for m in obj.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = str(m.get("role", "user"))
        content = m.get("content")
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "tool_result":
                    view.context.append(ContextPart("tool", text_of(part.get("content"))))
                elif kind == "document":
                    view.context.append(ContextPart("document", text_of([part])))
        text = (
            text_of([p for p in content if isinstance(p, dict) and p.get("type") == "text"])
            if isinstance(content, list)
            else text_of(content)
        )
        view.messages.append(Message(role, text))
        if text:
            view.context.append(ContextPart("user" if role == "user" else "assistant", text))
            if role == "user":
                view.question = text
    return view


def parse_response(route: str, body: bytes, stream: bool) -> ResponseView:
    if stream:
        return _stream(body)
    try:
        obj = json.loads(body)
    except ValueError:
        return ResponseView(error="unparsable_response")
    if not isinstance(obj, dict):
        return ResponseView(error="unparsable_response")
    view = ResponseView(response_model=nonempty(obj.get("model")), response_id=nonempty(obj.get("id")))
    texts: list[str] = []
    for block in obj.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            view.tool_calls.append(
                ToolCall(str(block.get("name", "")), json.dumps(block.get("input", {})), nonempty(block.get("id")))
            )
    view.answer = "".join(texts)
    view.finish_reason = nonempty(obj.get("stop_reason"))
    _usage(view, obj.get("usage"))
    if obj.get("type") == "error":
        view.error = "upstream_error_body"
    return view


def _stream(body: bytes) -> ResponseView:
    view = ResponseView()
    texts: list[str] = []
    tools: dict[int, dict[str, str]] = {}
    for ev in iter_events(body):
        obj = ev.json()
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type") or ev.event
        if kind == "message_start":
            msg = obj.get("message") or {}
            view.response_model = nonempty(msg.get("model"))
            view.response_id = nonempty(msg.get("id"))
            _usage(view, msg.get("usage"))
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                tools[int(obj.get("index", 0))] = {
                    "name": str(block.get("name", "")),
                    "id": str(block.get("id", "")),
                    "args": "",
                }
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                if view.first_content_offset is None:
                    view.first_content_offset = ev.end
                texts.append(str(delta.get("text", "")))
            elif delta.get("type") == "input_json_delta":
                if view.first_content_offset is None:
                    view.first_content_offset = ev.end
                slot = tools.setdefault(int(obj.get("index", 0)), {"name": "", "id": "", "args": ""})
                slot["args"] += str(delta.get("partial_json", ""))
        elif kind == "message_delta":
            delta = obj.get("delta") or {}
            view.finish_reason = nonempty(delta.get("stop_reason")) or view.finish_reason
            _usage(view, obj.get("usage"))
        elif kind == "error":
            view.error = "upstream_error_event"
    view.answer = "".join(texts)
    view.tool_calls = [ToolCall(t["name"], t["args"], t["id"] or None) for _, t in sorted(tools.items())]
    return view


def _usage(view: ResponseView, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    if isinstance(usage.get("input_tokens"), int):
        view.input_tokens = usage["input_tokens"]
    if isinstance(usage.get("output_tokens"), int):
        view.output_tokens = usage["output_tokens"]
    # prompt caching: reads and writes are counted apart from `input_tokens`
    view.input_excludes_cache = True
    if isinstance(usage.get("cache_read_input_tokens"), int):
        view.cache_read_tokens = usage["cache_read_input_tokens"]
    if isinstance(usage.get("cache_creation_input_tokens"), int):
        view.cache_write_tokens = usage["cache_creation_input_tokens"]
