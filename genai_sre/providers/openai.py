"""OpenAI dialects: chat completions, the Responses API, completions and embeddings; streaming or not."""

from __future__ import annotations

import json
from typing import Any

from genai_sre.events import ContextPart, Message, ToolCall
from genai_sre.providers.sse import iter_events
from genai_sre.providers.views import RequestView, ResponseView, nonempty, request_params, text_of

__all__ = ["parse_request", "parse_response"]

_ROLE_KIND = {"system": "system", "developer": "system", "user": "user", "tool": "tool", "function": "tool"}


def parse_request(route: str, obj: dict[str, Any]) -> RequestView:
    view = RequestView(model=nonempty(obj.get("model")), stream=bool(obj.get("stream")), params=request_params(obj))
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        view.metadata = {str(k): str(v) for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
    view.user = nonempty(obj.get("user")) or nonempty(obj.get("safety_identifier"))
    conversation = obj.get("conversation")  # Responses API: a conversation id, or {"id": ...}
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    view.conversation_id = nonempty(conversation)
    if route.endswith("/chat/completions"):
        view.operation = "chat"
        _messages(view, obj.get("messages"))
    elif route.endswith("/responses"):
        view.operation = "chat"
        instructions = obj.get("instructions")
        if isinstance(instructions, str) and instructions:
            view.messages.append(Message("system", instructions))
            view.context.append(ContextPart("system", instructions))
        inp = obj.get("input")
        if isinstance(inp, str):
            view.messages.append(Message("user", inp))
            view.context.append(ContextPart("user", inp))
            view.question = inp
        else:
            _responses_input(view, inp)
    elif route.endswith("/embeddings"):
        view.operation = "embeddings"
    elif route.endswith("/completions"):
        view.operation = "text_completion"
        prompt = obj.get("prompt")
        if isinstance(prompt, str):
            view.question = prompt
            view.context.append(ContextPart("user", prompt))
    return view


def _messages(view: RequestView, messages: Any) -> None:
    if not isinstance(messages, list):
        return
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = str(m.get("role", "user"))
        text = text_of(m.get("content"))
        view.messages.append(Message(role, text, nonempty(m.get("name"))))
        kind = _ROLE_KIND.get(role, "assistant")
        if text:
            view.context.append(ContextPart(kind, text))  # type: ignore[arg-type]
        if role == "user" and text:
            view.question = text


def _responses_input(view: RequestView, items: Any) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or "role" in item:
            role = str(item.get("role", "user"))
            text = text_of(item.get("content"))
            view.messages.append(Message(role, text))
            if text:
                view.context.append(ContextPart(_ROLE_KIND.get(role, "assistant"), text))  # type: ignore[arg-type]
            if role == "user" and text:
                view.question = text
        elif kind == "function_call_output":
            out = item.get("output")
            text = out if isinstance(out, str) else json.dumps(out)
            view.context.append(ContextPart("tool", text))


def parse_response(route: str, body: bytes, stream: bool) -> ResponseView:
    if stream:
        return _responses_stream(body) if route.endswith("/responses") else _chat_stream(body)
    try:
        obj = json.loads(body)
    except ValueError:
        return ResponseView(error="unparsable_response")
    if not isinstance(obj, dict):
        return ResponseView(error="unparsable_response")
    if route.endswith("/responses"):
        return _responses_object(obj)
    view = ResponseView(response_model=nonempty(obj.get("model")), response_id=nonempty(obj.get("id")))
    _usage(view, obj.get("usage"))
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        view.finish_reason = nonempty(choice.get("finish_reason"))
        msg = choice.get("message")
        if isinstance(msg, dict):
            view.answer = text_of(msg.get("content"))
            for tc in msg.get("tool_calls") or []:
                if not isinstance(tc, dict):
                    continue
                fn = tc.get("function")
                fn = fn if isinstance(fn, dict) else {}
                view.tool_calls.append(
                    ToolCall(str(fn.get("name", "")), str(fn.get("arguments", "")), nonempty(tc.get("id")))
                )
        elif isinstance(choice.get("text"), str):
            view.answer = choice["text"]
        view.logprobs = _logprobs(choice.get("logprobs"))
    elif isinstance(obj.get("data"), list):
        pass  # embeddings: usage only
    if "error" in obj and not choices:
        view.error = "upstream_error_body"
    return view


def _chat_stream(body: bytes) -> ResponseView:
    view = ResponseView()
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    logprobs: list[float] = []
    for ev in iter_events(body):
        if ev.data.strip() == "[DONE]":
            continue
        obj = ev.json()
        if not isinstance(obj, dict):
            continue
        view.response_model = view.response_model or nonempty(obj.get("model"))
        view.response_id = view.response_id or nonempty(obj.get("id"))
        _usage(view, obj.get("usage"))
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                if view.first_content_offset is None:
                    view.first_content_offset = ev.end
                parts.append(content)
            for tc in (delta.get("tool_calls") or []) if isinstance(delta, dict) else []:
                if view.first_content_offset is None:
                    view.first_content_offset = ev.end
                slot = calls.setdefault(int(tc.get("index", 0)), {"name": "", "arguments": "", "id": ""})
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
                slot["id"] = slot["id"] or (tc.get("id") or "")
            if choice.get("finish_reason"):
                view.finish_reason = str(choice["finish_reason"])
            lp = _logprobs(choice.get("logprobs"))
            if lp:
                logprobs.extend(lp)
    view.answer = "".join(parts)
    view.tool_calls = [ToolCall(c["name"], c["arguments"], c["id"] or None) for _, c in sorted(calls.items())]
    view.logprobs = logprobs or None
    return view


def _responses_object(obj: dict[str, Any]) -> ResponseView:
    view = ResponseView(response_model=nonempty(obj.get("model")), response_id=nonempty(obj.get("id")))
    _usage(view, obj.get("usage"))
    texts: list[str] = []
    for item in obj.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
        elif item.get("type") == "function_call":
            view.tool_calls.append(
                ToolCall(str(item.get("name", "")), str(item.get("arguments", "")), nonempty(item.get("call_id")))
            )
    view.answer = "".join(texts)
    status = obj.get("status")
    view.finish_reason = "stop" if status == "completed" else nonempty(status)
    return view


def _responses_stream(body: bytes) -> ResponseView:
    view = ResponseView()
    parts: list[str] = []
    for ev in iter_events(body):
        obj = ev.json()
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type") or ev.event
        if kind == "response.output_text.delta":
            if view.first_content_offset is None:
                view.first_content_offset = ev.end
            parts.append(str(obj.get("delta", "")))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            final = _responses_object(obj.get("response") or {})
            final.first_content_offset = view.first_content_offset
            if not final.answer:
                final.answer = "".join(parts)
            return final
    view.answer = "".join(parts)
    return view


def _usage(view: ResponseView, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    inp = usage.get("prompt_tokens", usage.get("input_tokens"))
    out = usage.get("completion_tokens", usage.get("output_tokens"))
    if isinstance(inp, int):
        view.input_tokens = inp
    if isinstance(out, int):
        view.output_tokens = out
    # chat completions: prompt/completion_tokens_details; Responses: input/output_tokens_details
    inp_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    if isinstance(inp_details, dict) and _count(inp_details.get("cached_tokens")) is not None:
        view.cache_read_tokens = inp_details["cached_tokens"]
    if isinstance(out_details, dict) and _count(out_details.get("reasoning_tokens")) is not None:
        view.reasoning_tokens = out_details["reasoning_tokens"]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _logprobs(obj: Any) -> list[float] | None:
    if not isinstance(obj, dict):
        return None
    content = obj.get("content")
    if isinstance(content, list):
        vals = [
            float(t["logprob"]) for t in content if isinstance(t, dict) and isinstance(t.get("logprob"), (int, float))
        ]
        return vals or None
    tokens = obj.get("token_logprobs")  # legacy completions
    if isinstance(tokens, list):
        return [float(v) for v in tokens if isinstance(v, (int, float))] or None
    return None
