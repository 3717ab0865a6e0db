"""The simulated upstream: OpenAI chat completions, Responses, embeddings and models, plus Anthropic Messages.

Streaming and not, with usage (and `stream_options.include_usage`), optional
logprobs and tool calls. Each request draws its behaviour from the scenario
phase in force (by time since start, or pinned with `POST /_mock/phase`):
latency, errors, cut streams, faithful or inventing answers, refusals by user
group. Deterministic for a given seed and request order.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from genai_sre.mock.answers import REFUSAL, faithful_answer, invented_answer
from genai_sre.mock.scenario import Phase, Scenario

__all__ = ["MockUpstream"]


class MockUpstream:
    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] = time.monotonic,
        speed: float = 1.0,
        phase_scale: float = 1.0,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.speed = speed  # divides every delay: 10 runs the scenario's delays ten times faster
        self.phase_scale = phase_scale  # runs through the phases this many times faster (delays unchanged)
        self.started = clock()
        self.pinned: str | None = None
        self.count = 0

    # -- behaviour -----------------------------------------------------------------------------

    def phase(self) -> Phase:
        if self.pinned is not None:
            p = self.scenario.phase_named(self.pinned)
            if p is not None:
                return p
        return self.scenario.phase_at((self.clock() - self.started) * self.speed * self.phase_scale)

    def _rng(self, body: bytes) -> random.Random:
        self.count += 1
        return random.Random(f"{self.scenario.seed}:{zlib.crc32(body)}:{self.count}")

    def _ttft(self, phase: Phase, rng: random.Random) -> float:
        lat = phase.ttft_s
        value = lat.median * math.exp(rng.gauss(0.0, 1.0) * lat.sigma) if lat.sigma else lat.median
        return max(0.0, value) / self.speed

    def _group(self, request: web.Request, obj: dict[str, Any]) -> str | None:
        meta = obj.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("group"), str):
            return str(meta["group"])
        return request.headers.get(self.scenario.group_header)

    def _answer(
        self, phase: Phase, rng: random.Random, context: str, question: str, group: str | None
    ) -> tuple[str, bool]:
        refusal = phase.refusal_by_group.get(group or "", phase.refusal_rate)
        if rng.random() < refusal:
            return REFUSAL, False
        if rng.random() < phase.invent_rate:
            return invented_answer(context, question, rng), True
        return faithful_answer(context, question, rng), False

    # -- HTTP ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.health)  # an upstream's own paths stay reachable through the proxy
        app.router.add_post("/_mock/phase", self.set_phase)
        app.router.add_get("/_mock/state", self.state)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "phase": self.phase().name})

    async def state(self, _: web.Request) -> web.Response:
        return web.json_response({"phase": self.phase().name, "requests": self.count, "pinned": self.pinned})

    async def set_phase(self, request: web.Request) -> web.Response:
        obj = await request.json()
        name = obj.get("name") if isinstance(obj, dict) else None
        if name is not None and self.scenario.phase_named(str(name)) is None:
            return web.json_response({"error": f"no phase {name!r}"}, status=400)
        self.pinned = None if name is None else str(name)
        return web.json_response({"phase": self.phase().name})

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "mock-llm", "object": "model", "owned_by": "mock"}]}
        )

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], bytes] | web.Response:
        body = await request.read()
        try:
            obj = json.loads(body)
        except ValueError:
            return _error(400, "invalid JSON body", "invalid_request_error")
        if not isinstance(obj, dict):
            return _error(400, "the body must be a JSON object", "invalid_request_error")
        return obj, body

    async def chat(self, request: web.Request) -> web.StreamResponse:
        read = await self._read(request)
        if isinstance(read, web.Response):
            return read
        obj, body = read
        phase, rng = self.phase(), self._rng(body)
        messages: list[Any] = _list(obj.get("messages"))
        context = "\n".join(
            _text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") != "assistant"
        )
        question = next(
            (_text(m.get("content")) for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), ""
        )
        await asyncio.sleep(self._ttft(phase, rng) if not obj.get("stream") else 0)
        if rng.random() < phase.error_rate:
            return _error(phase.error_status, "the simulated upstream is failing", "server_error")
        model = str(obj.get("model") or "mock-llm")
        rid = f"chatcmpl-{rng.getrandbits(48):012x}"
        tool_call = _tool_call(obj, messages, question, rng)
        answer, invented = (
            ("", False) if tool_call else self._answer(phase, rng, context, question, self._group(request, obj))
        )
        words = answer.split(" ") if answer else []
        prompt_tokens = max(1, round(len(context.split()) * 1.3))
        completion_tokens = max(1, round(len(words) * 1.3)) if words else (8 if tool_call else 0)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        want_logprobs = bool(obj.get("logprobs"))
        headers = {"x-mock-phase": phase.name, "x-mock-invented": "1" if invented else "0"}
        if phase.model_version:
            headers["x-model-version"] = phase.model_version
        finish = "tool_calls" if tool_call else "stop"
        if not obj.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer if not tool_call else None}
            if tool_call:
                message["tool_calls"] = [tool_call]
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
            if want_logprobs:
                choice["logprobs"] = {"content": _logprobs(words, invented, rng)}
            payload = {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
            return web.json_response(payload, headers=headers)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers})
        await resp.prepare(request)
        base = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            await resp.write(f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n".encode())

        # Headers and the role chunk come at once; content comes after the time to first token.
        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        await asyncio.sleep(self._ttft(phase, rng))
        cut_at = len(words) // 2 if rng.random() < phase.cut_rate else None
        if tool_call:
            await send([{"index": 0, "delta": {"tool_calls": [{"index": 0, **tool_call}]}, "finish_reason": None}])
        delay = 1.0 / max(phase.tokens_per_s, 1e-3) / self.speed
        for i, word in enumerate(words):
            if cut_at is not None and i == cut_at:
                if request.transport is not None:
                    request.transport.abort()
                return resp
            delta: dict[str, Any] = {
                "index": 0,
                "delta": {"content": word if i == 0 else " " + word},
                "finish_reason": None,
            }
            if want_logprobs:
                delta["logprobs"] = {"content": _logprobs([word], invented, rng)}
            await send([delta])
            if delay > 0.0005:
                await asyncio.sleep(delay)
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        opts = obj.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            await send([], usage=usage)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def responses(self, request: web.Request) -> web.StreamResponse:
        read = await self._read(request)
        if isinstance(read, web.Response):
            return read
        obj, body = read
        phase, rng = self.phase(), self._rng(body)
        inp = obj.get("input")
        question = (
            inp if isinstance(inp, str) else " ".join(_text(i.get("content")) for i in inp or [] if isinstance(i, dict))
        )
        context = f"{obj.get('instructions') or ''}\n{question}"
        await asyncio.sleep(self._ttft(phase, rng))
        if rng.random() < phase.error_rate:
            return _error(phase.error_status, "the simulated upstream is failing", "server_error")
        answer, _ = self._answer(phase, rng, context, question, self._group(request, obj))
        tokens = max(1, round(len(answer.split()) * 1.3))
        final = {
            "id": f"resp_{rng.getrandbits(48):012x}",
            "object": "response",
            "status": "completed",
            "model": str(obj.get("model") or "mock-llm"),
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}],
            "usage": {"input_tokens": max(1, round(len(context.split()) * 1.3)), "output_tokens": tokens},
        }
        if not obj.get("stream"):
            return web.json_response(final)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, word in enumerate(answer.split(" ")):
            ev = {"type": "response.output_text.delta", "delta": word if i == 0 else " " + word}
            await resp.write(f"event: response.output_text.delta\ndata: {json.dumps(ev)}\n\n".encode())
        done = {"type": "response.completed", "response": final}
        await resp.write(f"event: response.completed\ndata: {json.dumps(done)}\n\n".encode())
        await resp.write_eof()
        return resp

    async def embeddings(self, request: web.Request) -> web.Response:
        read = await self._read(request)
        if isinstance(read, web.Response):
            return read
        obj, _ = read
        inputs = obj.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = []
        for i, item in enumerate(items):
            r = random.Random(str(item))
            data.append(
                {"object": "embedding", "index": i, "embedding": [round(r.uniform(-1, 1), 6) for _ in range(8)]}
            )
        tokens = sum(len(str(x).split()) for x in items)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": str(obj.get("model") or "mock-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        read = await self._read(request)
        if isinstance(read, web.Response):
            return read
        obj, body = read
        phase, rng = self.phase(), self._rng(body)
        msgs: list[Any] = _list(obj.get("messages"))
        context = (
            _text(obj.get("system")) + "\n" + "\n".join(_text(m.get("content")) for m in msgs if isinstance(m, dict))
        )
        question = next(
            (_text(m.get("content")) for m in reversed(msgs) if isinstance(m, dict) and m.get("role") == "user"), ""
        )
        if not obj.get("stream"):
            await asyncio.sleep(self._ttft(phase, rng))
        if rng.random() < phase.error_rate:
            return web.json_response(
                {"type": "error", "error": {"type": "overloaded_error", "message": "simulated"}},
                status=phase.error_status if phase.error_status != 503 else 529,
            )
        answer, _ = self._answer(phase, rng, context, question, self._group(request, obj))
        model = str(obj.get("model") or "mock-claude")
        mid = f"msg_{rng.getrandbits(48):012x}"
        usage_in, usage_out = max(1, round(len(context.split()) * 1.3)), max(1, round(len(answer.split()) * 1.3))
        if not obj.get("stream"):
            return web.json_response(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": answer}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": usage_out},
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(kind: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

        await event(
            "message_start",
            {
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": 1},
                }
            },
        )
        await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        await asyncio.sleep(self._ttft(phase, rng))
        for i, word in enumerate(answer.split(" ")):
            await event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": word if i == 0 else " " + word}},
            )
        await event("content_block_stop", {"index": 0})
        await event(
            "message_delta",
            {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": usage_out}},
        )
        await event("message_stop", {})
        await resp.write_eof()
        return resp


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return ""


def _tool_call(obj: dict[str, Any], messages: list[Any], question: str, rng: random.Random) -> dict[str, Any] | None:
    tools = obj.get("tools")
    if not isinstance(tools, list) or not tools or obj.get("tool_choice") == "none":
        return None
    if any(isinstance(m, dict) and m.get("role") == "tool" for m in messages):
        return None  # the tool already answered: reply in text, grounded in its result
    fn = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
    args = json.dumps({"query": question[:60]})
    return {
        "id": f"call_{rng.getrandbits(32):08x}",
        "type": "function",
        "function": {"name": str(fn.get("name", "tool")), "arguments": args},
    }


def _logprobs(words: list[str], invented: bool, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for w in words:
        low = invented and rng.random() < 0.3
        lp = -rng.uniform(1.5, 5.0) if low else -rng.uniform(0.0, 0.4)
        out.append({"token": w, "logprob": round(lp, 4), "bytes": list(w.encode()), "top_logprobs": []})
    return out


def _error(status: int, message: str, type_: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": type_, "param": None, "code": None}}, status=status)
