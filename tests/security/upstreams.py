"""Small local upstreams for the abuse suite: each records what reached it."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from dataclasses import dataclass, field

from aiohttp import web

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello."}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stream_closed_at: list[float] = field(default_factory=list)
    tokens_sent: list[int] = field(default_factory=list)


def recording_app(seen: Seen, models: set[str] | None = None) -> web.Application:
    """Answers every path with a chat completion; with `models`, unknown models get 404 like OpenAI."""

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.paths.append(request.raw_path)
        seen.headers.append({k.lower(): v for k, v in request.headers.items()})
        body = await request.read()
        if models is not None and body[:1] == b"{":
            model = json.loads(body).get("model")
            if model not in models:
                error = {"error": {"message": "model not found", "code": "model_not_found"}}
                return web.json_response(error, status=404)
        return web.json_response({**CHAT, "path": request.raw_path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def gzip_bomb(uncompressed: int) -> bytes:
    """A gzip body of `uncompressed` zero bytes (about 1 MiB per GiB), built without holding them."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    out = [comp.compress(block) for _ in range(uncompressed >> 20)]
    out.append(comp.flush())
    return b"".join(out)


def bomb_app(payload: bytes, status: int = 500) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=payload, status=status, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def download_app(size: int) -> web.Application:
    """A `size`-byte download with a Content-Length, written in 1 MiB pieces (never held whole)."""
    piece = b"x" * (1 << 20)

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        left = size
        while left > 0:
            n = min(left, len(piece))
            await resp.write(piece[:n])
            left -= n
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def slow_stream_app(seen: Seen, tokens: int = 300, every_s: float = 0.05) -> web.Application:
    """An SSE chat stream of `tokens` chunks; records how many it sent and when the client went away."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        sent = 0
        try:
            for i in range(tokens):
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o",
                         "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}]}
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
                sent += 1
                await asyncio.sleep(every_s)
            await resp.write(b"data: [DONE]\n\n")
        except (Exception, asyncio.CancelledError):
            seen.stream_closed_at.append(time.monotonic())
            seen.tokens_sent.append(sent)
            raise
        seen.tokens_sent.append(sent)
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)
