"""Memory stays bounded whatever the upstream sends: decompression bombs and large downloads stream through."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.security.upstreams import bomb_app, download_app, gzip_bomb
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration

MiB = 1 << 20


def test_a_gzip_bomb_is_decompressed_only_up_to_the_capture_limit(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    bomb = gzip_bomb(1024 * MiB)  # 1 GiB of zeros, about 1 MiB compressed
    upstream = serve_app(bomb_app(bomb))
    with sidecar(tmp_path, upstream) as sc:
        before = sc.peak_rss()
        with httpx.stream("POST", sc.proxy_url + "/v1/chat/completions", json={"model": "m"}, timeout=30) as r:
            assert r.status_code == 500
            raw = b"".join(r.iter_raw())
        assert hashlib.sha256(raw).digest() == hashlib.sha256(bomb).digest()  # the compressed bytes, unchanged
        deadline = time.monotonic() + 20
        while sc.metric("genai_sre_pipeline_processing_seconds_count") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)  # the capture was parsed (and decompressed) by now
        assert sc.metric("genai_sre_pipeline_processing_seconds_count") >= 1
        growth = sc.peak_rss() - before
    assert growth < 150 * MiB, f"peak RSS grew by {growth / MiB:.0f} MiB"


def test_a_large_download_streams_with_bounded_memory(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    size = 300 * MiB
    upstream = serve_app(download_app(size))
    with sidecar(tmp_path, upstream) as sc:
        before = sc.peak_rss()
        t0 = time.monotonic()
        first_byte = None
        got = 0
        with httpx.stream("GET", sc.proxy_url + "/v1/files/big/content", timeout=60) as r:
            assert r.status_code == 200 and r.headers["content-length"] == str(size)
            for chunk in r.iter_raw(MiB):
                if first_byte is None:
                    first_byte = time.monotonic() - t0
                got += len(chunk)
        growth = sc.peak_rss() - before
    assert got == size
    assert first_byte is not None and first_byte < 2.0, f"first byte after {first_byte:.2f} s"
    assert growth < 150 * MiB, f"peak RSS grew by {growth / MiB:.0f} MiB"
