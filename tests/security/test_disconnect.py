"""A client that goes away stops the upstream's work at once, and never counts as a success."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.security.upstreams import Seen, slow_stream_app
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration


def test_a_client_disconnect_cancels_the_upstream_request_within_a_second(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    seen = Seen()
    upstream = serve_app(slow_stream_app(seen, tokens=300, every_s=0.05))  # 15 s of tokens
    with sidecar(tmp_path, upstream) as sc:
        body = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
        sock = socket.create_connection(("127.0.0.1", sc.proxy_port))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:
            sock.recv(65536)
        sock.close()
        gone = time.monotonic()
        deadline = gone + 5
        while not seen.stream_closed_at and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen.stream_closed_at, "the upstream kept generating after the client left"
        assert seen.stream_closed_at[0] - gone < 1.0
        assert seen.tokens_sent[0] < 60
        time.sleep(0.5)
        assert sc.total("genai_sre_requests_total", status_class="disconnect", upstream="up") == 1
        assert sc.total("genai_sre_requests_total", status_class="2xx") == 0
