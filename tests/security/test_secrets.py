"""Credentials under any header name never reach captures, logs or metrics; data files are private."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from genai_sre.events import Alert
from genai_sre.wiring import _with_evidence
from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import raw_exchange, sidecar

pytestmark = pytest.mark.integration

SECRET = "sk-live-0123456789abcdefSECRET"


def test_unanticipated_credential_headers_and_query_strings_never_leak(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    seen = Seen()
    upstream = serve_app(recording_app(seen))
    extra = (
        "slo: {file: null}\nalerting: {file: null}\n"
        "detectors: [{name: latency, type: latency}]\nlogging: {level: DEBUG}\n"
    )
    with sidecar(tmp_path, upstream, extra, storage="store_samples: true, sample_rate: 1.0") as sc:
        headers = {"apikey": SECRET, "helicone-auth": f"Bearer {SECRET}", "x-authorization": SECRET,
                   "x-my-secret-thing": SECRET, "Authorization": f"Bearer {SECRET}"}
        r = httpx.post(sc.proxy_url + f"/v1/chat/completions?key={SECRET}", json={"model": "gpt-4o"},
                       headers=headers)
        assert r.status_code == 200
        assert seen.headers[-1]["apikey"] == SECRET  # forwarded untouched
        # a malformed request line carrying a key in its query string
        raw_exchange(sc.proxy_port, f"GET /v1/models?key={SECRET} HTTP/1.1 junk\r\n\r\n".encode(), timeout=2)
        raw_exchange(sc.proxy_port, f"G\x01T /v1/models?key={SECRET} HTTP/1.1\r\n\r\n".encode(), timeout=2)
        time.sleep(1.0)
        metrics = sc.metrics()
        data_dir = sc.data_dir
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in data_dir.rglob("*") if p.is_file()}
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert SECRET not in metrics
    assert SECRET not in sc.log
    assert files, "the evidence store wrote nothing"
    for f in files:
        assert SECRET.encode() not in f.read_bytes(), f
    # private files: the data directory 0700, every file in it 0600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert modes and all(mode == 0o600 for mode in modes.values()), modes


def test_time_slice_alert_evidence_is_redacted() -> None:
    alert = Alert(labels={"alertname": "x", "slo": "fairness"}, annotations={}, status="firing", starts_at=0.0)
    out = _with_evidence(alert, {"explanation": "answer mailed to jane.doe@example.com, card 4111 1111 1111 1111",
                                 "answer": "call +1 415 555 0100"})
    text = " ".join(out.annotations.values())
    assert "jane.doe@example.com" not in text and "4111 1111 1111 1111" not in text and "555 0100" not in text
