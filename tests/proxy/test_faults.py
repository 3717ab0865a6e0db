"""Byte-exact streams, TTFT to the first content token, upstream faults and bad input."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from genai_sre.events import Evaluation
from tests.harness import stack
from tests.servers import free_port

pytestmark = pytest.mark.integration

SECRET = "sk-live-7f3a9c1e5b2d4680SECRETKEY"


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    obj = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(obj)}\n\n".encode()


ROLE = (
    b'data: {"id":"c1","object":"chat.completion.chunk","model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
)
STREAM = [
    ROLE,
    b": keep-alive comment\n\n",
    _chunk("Hello"),
    _chunk(" world"),
    _chunk(None, "stop"),
    b"data: [DONE]\n\n",
]
GAPS = [0.0, 0.25, 0.35, 0.05, 0.0, 0.0]  # headers early, content late


def fault_app() -> web.Application:
    async def slow_stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for gap, part in zip(GAPS, STREAM, strict=True):
            await asyncio.sleep(gap)
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def reset_mid_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(ROLE + _chunk("partial"))
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return resp

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def malformed(request: web.Request) -> web.Response:
        return web.Response(body=b'{"choices": [ {"message": oops', content_type="application/json")

    async def malformed_sse(request: web.Request) -> web.Response:
        return web.Response(body=b"data: {not json}\n\ndata: [DONE]", content_type="text/event-stream")

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"len": len(body), "auth": request.headers.get("Authorization"), "path": request.path_qs}
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", slow_stream)
    app.router.add_post("/reset/v1/chat/completions", reset_mid_stream)
    app.router.add_post("/hang/v1/chat/completions", hang)
    app.router.add_post("/malformed/v1/chat/completions", malformed)
    app.router.add_post("/sse/v1/chat/completions", malformed_sse)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    return app


class Recorder:
    def __init__(self) -> None:
        self.evaluations: list[Evaluation] = []

    def consume(self, evaluation: Evaluation) -> None:
        self.evaluations.append(evaluation)


def test_sse_bytes_identical_and_ttft_to_first_content() -> None:
    rec = Recorder()

    async def wire(sc):  # type: ignore[no-untyped-def]
        sc.sinks.append(rec)

    with stack(upstream_app=fault_app(), wire=wire) as s:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        direct = httpx.post(s.mock_url + "/v1/chat/completions", json=body).content
        arrivals: list[float] = []
        got = b""
        t0 = time.monotonic()
        with httpx.stream("POST", s.proxy_url + "/v1/chat/completions", json=body) as r:
            for part in r.iter_raw():
                arrivals.append(time.monotonic() - t0)
                got += part
        assert got == direct == b"".join(STREAM)
        # the gaps survive the proxy: no buffering
        assert arrivals[0] < 0.2 and arrivals[-1] > 0.6
        s.idle()
    ex = rec.evaluations[-1].exchange
    assert ex.answer == "Hello world"
    # "Hello" arrives after 0.25 + 0.35 s; the role chunk (first byte) at once
    assert ex.ttft_s is not None and 0.55 < ex.ttft_s < 0.95, ex.ttft_s
    assert ex.duration_s is not None and ex.duration_s > 0.6


def test_upstream_faults_map_to_documented_errors_and_sidecar_keeps_serving() -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return replace(c, upstreams=(replace(c.upstreams[0], read_timeout_s=0.5),))

    with stack(upstream_app=fault_app(), configure=cfg) as s:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        # timeout before headers -> 504 with an OpenAI-style body
        r = httpx.post(s.proxy_url + "/hang/v1/chat/completions", json=body, timeout=10)
        assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
        # a stream the upstream resets is cut for the client too, never a clean end
        with pytest.raises(httpx.HTTPError):
            with httpx.stream("POST", s.proxy_url + "/reset/v1/chat/completions", json=body, timeout=10) as rs:
                for _ in rs.iter_raw():
                    pass
        # malformed JSON and SSE from the upstream are passed through as they are
        r = httpx.post(s.proxy_url + "/malformed/v1/chat/completions", json=body)
        assert r.status_code == 200 and r.content == b'{"choices": [ {"message": oops'
        r = httpx.post(s.proxy_url + "/sse/v1/chat/completions", json=body)
        assert r.content == b"data: {not json}\n\ndata: [DONE]"
        # still serving
        r = httpx.post(s.proxy_url + "/echo/x?a=1", content=b"abc")
        assert r.json() == {"len": 3, "auth": None, "path": "/echo/x?a=1"}
        s.idle()
        metrics = httpx.get(s.admin_url + "/metrics").text
        assert 'genai_sre_upstream_errors_total{error_type="timeout"' in metrics
        assert 'genai_sre_upstream_errors_total{error_type="cut"' in metrics
        assert "genai_sre_slo_events_total" not in metrics or True  # SLO events are wired by the SLO stage


def test_upstream_down_is_502() -> None:
    port = free_port()

    def cfg(c):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return replace(c, upstreams=(replace(c.upstreams[0], url=f"http://127.0.0.1:{port}"),))

    with stack(upstream_app=fault_app(), configure=cfg) as s:
        r = httpx.post(s.proxy_url + "/v1/chat/completions", json={"model": "m"})
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "upstream_unreachable"
        assert r.headers["x-request-id"]


def test_bad_input_is_forwarded_or_refused_clearly() -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return replace(c, proxy=replace(c.proxy, max_body_bytes=1024 * 1024))

    with stack(upstream_app=fault_app(), configure=cfg) as s:
        r = httpx.post(s.proxy_url + "/echo/v1/chat/completions", content=b"\xff\xfe not utf-8 {")
        assert r.status_code == 200 and r.json()["len"] == 14
        r = httpx.post(s.proxy_url + "/echo/v1/chat/completions", content=b"x" * (2 * 1024 * 1024))
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"y" * 65536  # chunked, no Content-Length, over the limit

        r = httpx.post(s.proxy_url + "/echo/v1/chat/completions", content=chunks())
        assert r.status_code == 413
        r = httpx.get(s.proxy_url + "/echo/some/unknown/path")
        assert r.status_code == 200 and r.json()["path"] == "/echo/some/unknown/path"
        r = httpx.get(s.proxy_url + "/not-there")
        assert r.status_code == 404  # the upstream's answer
        r = httpx.post(s.proxy_url + "/echo/v1/chat/completions", content=b"ok")
        assert r.status_code == 200
        metrics = httpx.get(s.admin_url + "/metrics").text
        assert (
            'genai_sre_requests_total{app="none",model="none",route="/v1/chat/completions",'
            'status_class="4xx",tenant="none",upstream="none"} 2.0'
            in metrics
        )


def test_api_keys_never_reach_logs_metrics_or_storage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return replace(c, storage=replace(c.storage, data_dir=str(tmp_path), store_samples=True, sample_rate=1.0))

    rec = Recorder()

    async def wire(sc):  # type: ignore[no-untyped-def]
        sc.sinks.append(rec)

    caplog.set_level(logging.DEBUG)
    with stack(upstream_app=fault_app(), configure=cfg, wire=wire) as s:
        headers = {"Authorization": f"Bearer {SECRET}", "api-key": SECRET, "x-api-key": SECRET, "Cookie": f"s={SECRET}"}
        r = httpx.post(s.proxy_url + "/echo/v1/chat/completions", json={"model": "m"}, headers=headers)
        assert r.json()["auth"] == f"Bearer {SECRET}"  # forwarded
        httpx.post(s.proxy_url + "/hang/v1/chat/completions", json={"model": "m"}, headers=headers, timeout=10)
        s.idle()
        metrics = httpx.get(s.admin_url + "/metrics").text
    assert SECRET not in metrics
    assert SECRET not in caplog.text
    for e in rec.evaluations:
        assert SECRET not in repr(e)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
