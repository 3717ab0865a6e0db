"""`/readyz` means "can forward": a monitoring problem (DNS for the upstream) shows on `/healthz`, not readiness."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration


def test_an_unresolvable_upstream_does_not_take_the_pod_out_of_service(tmp_path: Path) -> None:
    with sidecar(tmp_path, "http://llm.genai-sre-test.invalid:8000") as sc:
        assert httpx.get(sc.admin_url + "/readyz").status_code == 200
        health = httpx.get(sc.admin_url + "/healthz").json()
        assert health["status"] == "ok"
        assert health["upstreams"]["up"]["dns"] != "ok"  # reported, not acted on
        r = httpx.post(sc.proxy_url + "/v1/chat/completions", json={"model": "m"})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable"
