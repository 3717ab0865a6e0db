"""No client header can hide traffic from an SLO: the probe mark is the sidecar's own secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration

SLOS = """version: genai-sre/slos/v1
service: t
slos:
  - name: avail
    objective: 99
    period: 30d
    sli: {kind: availability}
"""


def test_a_client_sent_probe_marker_is_stripped_and_ignored(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    seen = Seen()
    upstream = serve_app(recording_app(seen))
    (tmp_path / "slos.yaml").write_text(SLOS)
    extra = f"slo: {{file: '{tmp_path / 'slos.yaml'}'}}\nalerting: {{file: null}}\n"
    with sidecar(tmp_path, upstream, extra) as sc:
        for value in ("1", "true", "x" * 32):
            r = httpx.post(
                sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"}, headers={"x-genai-sre-probe": value}
            )
            assert r.status_code == 200
        assert all("x-genai-sre-probe" not in h for h in seen.headers)  # never forwarded upstream
        good = sc.metric('genai_sre_slo_events_total{outcome="good",slo="avail"}')
    assert good == 3  # every request counted in the SLI
