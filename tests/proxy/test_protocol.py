"""HTTP details: Expect: 100-continue, request ids, the upstream's own x-request-id."""

from __future__ import annotations

import socket

import httpx
import pytest
from aiohttp import web

from genai_sre.events import Evaluation
from tests.harness import stack

pytestmark = pytest.mark.integration


def upstream() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"len": len(body), "expect": request.headers.get("Expect")}, headers={"x-request-id": "req_upstream_1"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def test_expect_100_continue_is_answered_and_not_forwarded() -> None:
    with stack(upstream_app=upstream()) as s:
        port = int(s.proxy_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(b"hello")
            data = b""
            while b'"expect"' not in data:
                data += sock.recv(4096)
        assert b'"len": 5' in data and b'"expect": null' in data


def test_upstream_request_id_is_kept_and_reused_client_ids_stay_distinct() -> None:
    got: list[Evaluation] = []

    class Rec:
        def consume(self, evaluation: Evaluation) -> None:
            got.append(evaluation)

    async def wire(sc):  # type: ignore[no-untyped-def]
        sc.sinks.append(Rec())

    with stack(upstream_app=upstream(), wire=wire) as s:
        for _ in range(2):
            r = httpx.post(
                s.proxy_url + "/v1/chat/completions", json={"model": "m"}, headers={"x-request-id": "mine-1"}
            )
            assert r.headers["x-request-id"] == "req_upstream_1"  # the provider's id, for its support desk
            assert r.headers["x-genai-sre-request-id"] == "mine-1"
        s.idle()
    ids = [e.exchange.id for e in got]
    assert len(set(ids)) == 2 and all(i.startswith("mine-1.") for i in ids)


def test_connection_close_and_http10_end_the_connection_after_the_answer() -> None:
    with stack(upstream_app=upstream()) as s:
        port = int(s.proxy_url.rsplit(":", 1)[1])
        for request in (
            b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            b"POST /v1/x HTTP/1.0\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(4096):  # the sidecar closes: recv returns b"" before the timeout
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()
