"""A bounded fuzz of request lines and headers against a real sidecar: it never answers 500 itself,
never contacts another host and keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import Listener, raw_exchange, sidecar

pytestmark = pytest.mark.integration

_METHODS = st.sampled_from([b"GET", b"POST", b"CONNECT", b"OPTIONS", b"PUT", b"DELETE", b"HEAD", b"PRI", b"G\x00T"])
_TOKEN = st.binary(min_size=0, max_size=40)
_TARGETS = st.one_of(
    st.sampled_from([b"/", b"/v1/chat/completions", b"*", b"//x", b"/%2e%2e/a", b"/a?b=%00"]),
    st.builds(lambda a, b: a + b, st.sampled_from([b"/", b"http://", b"@", b"", b"/.."]), _TOKEN),
)
_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"x-genai-sre-probe",
             b"Upgrade", b"traceparent", b"x-request-id", b"x-tenant", b"A", b""]
        ),
        _TOKEN,
    ),
    max_size=6,
)


def test_fuzzed_requests_never_break_the_sidecar(tmp_path: Path, serve_app: Callable[[web.Application], str]) -> None:
    seen = Seen()
    upstream = serve_app(recording_app(seen))
    victim = Listener()
    try:
        with sidecar(tmp_path, upstream) as sc:

            @settings(max_examples=120, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
            @given(method=_METHODS, target=_TARGETS, version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9"]),
                   headers=_HEADERS, body=st.binary(max_size=64))
            def one(method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]],
                    body: bytes) -> None:
                lines = [method + b" " + target + b" " + version]
                lines += [name + b": " + value for name, value in headers]
                raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
                out = raw_exchange(sc.proxy_port, raw, timeout=0.5)
                if out.startswith(b"HTTP/1.1 5"):
                    assert b"upstream" in out, out[:300]  # a 5xx is only ever the upstream's (or about it)

            one()
            r = httpx.post(sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"})
            assert r.status_code == 200
            assert sc.proc.poll() is None
            assert "Traceback" not in sc.log
        assert victim.connections == 0
    finally:
        victim.close()
