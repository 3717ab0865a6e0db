"""Open proxy / SSRF and path escapes: the upstream's host and base path come only from the config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import Listener, raw_exchange, sidecar

pytestmark = pytest.mark.integration


def _status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.strip() else {}


def test_connect_absolute_and_authority_forms_never_reach_another_host(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    seen = Seen()
    upstream = serve_app(recording_app(seen))
    victim = Listener()
    try:
        with sidecar(tmp_path, upstream) as sc:
            attacks = [
                f"CONNECT 127.0.0.1:{victim.port} HTTP/1.1\r\nHost: 127.0.0.1:{victim.port}\r\n\r\n",
                f"CONNECT @127.0.0.1:{victim.port} HTTP/1.1\r\nHost: x\r\nx-api-key: sk-secret\r\n\r\n",
                f"GET http://127.0.0.1:{victim.port}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET https://127.0.0.1:{victim.port}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET http://127.0.0.1:{sc.admin_port}/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET @127.0.0.1:{victim.port}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET //127.0.0.1:{victim.port}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET 127.0.0.1:{victim.port} HTTP/1.1\r\nHost: x\r\n\r\n",
                "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            for attack in attacks:
                status, body = _status_and_json(raw_exchange(sc.proxy_port, attack.encode()))
                assert 400 <= status < 500, attack
                assert isinstance(body.get("error"), dict), attack
            # A Host header naming another host changes nothing: the configured upstream answers.
            r = httpx.get(sc.proxy_url + "/v1/models", headers={"Host": f"127.0.0.1:{victim.port}"})
            assert r.status_code == 200 and seen.paths[-1] == "/v1/models"
            assert victim.connections == 0
            assert sc.metric('genai_sre_refused_requests_total{reason="connect"}') >= 2
    finally:
        victim.close()


def test_dot_segments_never_leave_the_upstream_base_path(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    seen = Seen()
    upstream = serve_app(recording_app(seen)) + "/tenant-a"
    with sidecar(tmp_path, upstream) as sc:
        escapes = [
            "/../tenant-b/v1/models",
            "/%2e%2e/tenant-b/v1/models",
            "/%2E%2e/tenant-b/v1/models",
            "/v1/../../tenant-b/v1/models",
            "/v1/%2e%2e%2f%2e%2e%2ftenant-b",
            "/v1/%252e%252e/tenant-b",
            "/v1/..%5c..%5ctenant-b",
            "/v1/.\\..\\tenant-b",
            "/./v1/models",
        ]
        for path in escapes:
            raw = raw_exchange(sc.proxy_port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, body = _status_and_json(raw)
            assert status == 400, path
        ok = httpx.get(sc.proxy_url + "/v1/models/gpt-3.5-turbo?x=1")
        assert ok.status_code == 200
    assert seen.paths == ["/tenant-a/v1/models/gpt-3.5-turbo?x=1"]
    assert all(p.startswith("/tenant-a/") for p in seen.paths)
