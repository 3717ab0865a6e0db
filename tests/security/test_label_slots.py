"""A client cannot exhaust the bounded label values: made-up models never take the slot of a real one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration


def test_junk_model_names_cannot_push_a_real_model_into_other(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    upstream = serve_app(recording_app(Seen(), models={"gpt-4o", "gpt-4o-mini"}))
    with sidecar(tmp_path, upstream) as sc, httpx.Client() as client:
        for i in range(40):
            r = client.post(sc.proxy_url + "/v1/chat/completions", json={"model": f"junk-{i}"})
            assert r.status_code == 404
        r = client.post(sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"})
        assert r.status_code == 200
        assert sc.total("genai_sre_requests_total", model="gpt-4o", status_class="2xx") == 1
        assert sc.total("genai_sre_requests_total", model="other", status_class="4xx") == 40
        assert "junk-" not in sc.metrics()


def test_a_permissive_upstream_still_keeps_used_models_labelled(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    upstream = serve_app(recording_app(Seen()))  # accepts any model name, as llama.cpp does
    with sidecar(tmp_path, upstream) as sc, httpx.Client() as client:
        for i in range(60):  # junk fills every slot first ...
            client.post(sc.proxy_url + "/v1/chat/completions", json={"model": f"junk-{i}"})
        for _ in range(10):  # ... and a model in real use still earns one
            client.post(sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"})
        assert sc.total("genai_sre_requests_total", model="gpt-4o") >= 7
        labelled = {line.split('model="')[1].split('"')[0] for line in sc.metrics().splitlines()
                    if line.startswith("genai_sre_requests_total{")}
        assert len(labelled) <= 2 * 20 + 1  # values admitted in the process's life, plus `other`
