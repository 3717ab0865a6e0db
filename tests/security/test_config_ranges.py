"""Config that would break at run time is refused up front, naming file, line and key; a busy port is one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.security.upstreams import Seen, recording_app
from tests.servers import free_port
from tests.sidecar_process import sidecar

pytestmark = pytest.mark.integration

BASE = "upstreams: [{name: up, url: 'http://127.0.0.1:9'}]\nslo: {file: null}\nalerting: {file: null}\n"


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "genai_sre", "check-config", "--config", str(cfg)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("snippet", "line", "key", "words"),
    [
        ("pipeline: {queue_size: 0}", 4, "pipeline.queue_size", "at least 1"),
        ("proxy: {max_body_bytes: -1}", 4, "proxy.max_body_bytes", "at least 1"),
        ("proxy: {port: 70000}", 4, "proxy.port", "at most 65535"),
        ("upstreams: [{name: up, url: 'http://127.0.0.1:9', max_connections: 0}]", 1, "upstreams[0].max_connections",
         "at least 1"),
        ("upstreams: [{name: up, url: 'http://127.0.0.1:9', read_timeout_s: -5}]", 1, "upstreams[0].read_timeout_s",
         "greater than 0"),
        ("detectors: [{name: l, type: latency, sample_rate: 5}]", 4, "detectors[0].sample_rate", "at most 1"),
        ("proxy: {shutdown_grace_s: .nan}", 4, "proxy.shutdown_grace_s", "finite"),
        ("proxy: {header_timeout_s: .inf}", 4, "proxy.header_timeout_s", "finite"),
        ("storage: {retention_days: NaN}", 4, "storage.retention_days", "finite"),
    ],
)
def test_out_of_range_values_name_file_line_and_key(
    tmp_path: Path, snippet: str, line: int, key: str, words: str
) -> None:
    text = BASE + snippet + "\n" if not snippet.startswith("upstreams") else snippet + "\n" + BASE.split("\n", 1)[1]
    done = _check(tmp_path, text)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"bad.yaml:{line}: {key}" in done.stderr and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    done = _check(tmp_path, BASE + "proxy: {port: 8788\n")
    assert done.returncode == 2
    assert "bad.yaml:" in done.stderr and "<unicode string>" not in done.stderr, done.stderr


def test_a_busy_port_is_one_clear_line_and_exit_2(
    tmp_path: Path, serve_app: Callable[[web.Application], str]
) -> None:
    upstream = serve_app(recording_app(Seen()))
    with sidecar(tmp_path, upstream) as sc:
        cfg = tmp_path / "second.yaml"
        cfg.write_text(
            f"upstreams: [{{name: up, url: '{upstream}'}}]\nproxy: {{port: {sc.proxy_port}}}\n"
            f"admin: {{port: {free_port()}}}\nslo: {{file: null}}\nalerting: {{file: null}}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"genai-sre: error: cannot listen on 127.0.0.1:{sc.proxy_port} (proxy port)")
    assert "address already in use" in lines[0].lower()


def test_the_admin_api_refuses_nan_and_infinity(tmp_path: Path, serve_app: Callable[[web.Application], str]) -> None:
    upstream = serve_app(recording_app(Seen()))
    (tmp_path / "alerting.yaml").write_text(
        "version: genai-sre/alerting/v1\nroute: {receiver: log}\nreceivers: [{name: log, type: stdout}]\n"
    )
    extra = f"slo: {{file: null}}\nalerting: {{file: '{tmp_path / 'alerting.yaml'}'}}\n"
    with sidecar(tmp_path, upstream, extra, env={"GENAI_SRE_ADMIN_TOKEN": "t0ken"}) as sc:
        auth = {"Authorization": "Bearer t0ken", "Content-Type": "application/json"}
        for body in ('{"matchers": ["slo=\\"x\\""], "duration_s": Infinity}',
                     '{"matchers": ["slo=\\"x\\""], "duration_s": NaN}',
                     '{"matchers": ["slo=\\"x\\""], "duration_s": -5}',
                     '{"matchers": ["slo=\\"x\\""], "duration_s": 1e300}'):
            r = httpx.post(sc.admin_url + "/admin/silences", content=body, headers=auth)
            assert r.status_code == 400, (body, r.text)
        r = httpx.post(sc.admin_url + "/admin/silences", json={"matchers": ['slo="x"'], "duration_s": 60},
                       headers=auth)
        assert r.status_code == 201
