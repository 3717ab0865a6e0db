"""Slow clients (slowloris) are closed after `proxy.header_timeout_s` / `proxy.body_timeout_s`, and counted."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration


def _closed_after(port: int, first: bytes, drip: bytes, every_s: float, limit_s: float) -> tuple[float, bytes]:
    """Send `first`, then `drip` every `every_s` while the server keeps the connection; how long it lasted."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(every_s)
    t0 = time.monotonic()
    sock.sendall(first)
    got = b""
    try:
        while time.monotonic() - t0 < limit_s:
            try:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
            except TimeoutError:
                if drip:
                    sock.sendall(drip)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return time.monotonic() - t0, got


def test_slowloris_headers_and_stalled_bodies_are_closed(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    upstream = serve_app(recording_app(Seen()))
    with sidecar(tmp_path, upstream, proxy="header_timeout_s: 1, body_timeout_s: 1") as sc:
        took, got = _closed_after(sc.proxy_port, b"GET /v1/models HTTP/1.1\r\n", b"X", 0.3, 10)
        assert took < 3.0, f"a header dripped byte by byte kept the connection for {took:.1f} s"
        assert got.startswith(b"HTTP/1.1 408")
        took, got = _closed_after(
            sc.proxy_port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", b"",
            0.3, 10,
        )
        assert took < 3.0 and got.startswith(b"HTTP/1.1 408")
        time.sleep(0.3)
        assert sc.metric('genai_sre_refused_requests_total{reason="header_timeout"}') == 1
        assert sc.metric('genai_sre_refused_requests_total{reason="body_timeout"}') == 1
