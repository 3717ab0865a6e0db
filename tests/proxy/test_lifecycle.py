"""`genai-sre serve` as a process: health endpoints, SIGTERM drain, HTTPS upstreams, upstream choice."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from genai_sre.config import UpstreamConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.mock.server import MockUpstream
from genai_sre.proxy.routes import UpstreamTable, extract_model
from genai_sre.proxy.upstream import env_proxy as _env_proxy
from tests.harness import LoopThread, stack
from tests.servers import free_port

SLOW_STREAM = Scenario(phases=(Phase(name="slow", ttft_s=Latency(0.05, 0.05), tokens_per_s=20),))
BODY = {
    "model": "m",
    "stream": True,
    "messages": [
        {
            "role": "user",
            "content": "The sky is blue because of Rayleigh scattering of sunlight in the air. Why is the sky blue?",
        }
    ],
}


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} never answered")


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_https_upstream_with_a_configured_ca_bundle(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    lt = LoopThread()

    async def start_tls() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(MockUpstream(Scenario()).app())
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
        return runner, port

    runner, tls_port = lt.call(start_tls())
    try:
        from dataclasses import replace

        def trusted(c):  # type: ignore[no-untyped-def]
            return replace(
                c, upstreams=(UpstreamConfig(name="tls", url=f"https://127.0.0.1:{tls_port}", ca_bundle=str(cert)),)
            )

        def untrusted(c):  # type: ignore[no-untyped-def]
            return replace(c, upstreams=(UpstreamConfig(name="tls", url=f"https://127.0.0.1:{tls_port}"),))

        with stack(configure=trusted) as s:
            r = httpx.get(s.proxy_url + "/v1/models")
            assert r.status_code == 200 and r.json()["data"][0]["id"] == "mock-llm"
        with stack(configure=untrusted) as s:
            r = httpx.get(s.proxy_url + "/v1/models")
            assert r.status_code == 502  # certificate not trusted: refused, with a clear error body
            assert r.json()["error"]["code"] == "upstream_unreachable"
    finally:
        lt.call(runner.cleanup())
        lt.stop()


def test_upstream_choice_by_model_then_longest_prefix() -> None:
    ups = (
        UpstreamConfig(name="default", url="http://a"),
        UpstreamConfig(name="anthropic", url="http://b", provider="anthropic", path_prefixes=("/v1/messages",)),
        UpstreamConfig(name="vllm", url="http://c", models=("llama-3-8b",)),
        UpstreamConfig(name="deep", url="http://d", path_prefixes=("/v1/messages/batches",)),
    )
    t = UpstreamTable(ups, ("/v1/chat/completions", "/v1/messages"))
    assert t.choose("/v1/chat/completions", None).name == "default"
    assert t.choose("/v1/chat/completions", "llama-3-8b").name == "vllm"
    assert t.choose("/v1/messages", None).name == "anthropic"
    assert t.choose("/v1/messages/batches/x", None).name == "deep"
    assert t.route("/openai/deployments/gpt4/chat/completions") == "/v1/chat/completions"  # Azure
    assert t.route("/some/thing") == "other"
    assert (
        extract_model(json.dumps({"messages": [{"content": 'say "model": "x"'}], "model": "gpt-4o"}).encode())
        == "gpt-4o"
    )


def test_https_proxy_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert _env_proxy("https://api.openai.com", "api.openai.com") == "http://proxy.internal:3128"
    assert _env_proxy("https://llm.internal.example", "llm.internal.example") is None
    monkeypatch.delenv("HTTPS_PROXY")
    for k in [k for k in os.environ if k.lower() == "https_proxy"]:
        monkeypatch.delenv(k)
    assert _env_proxy("https://api.openai.com", "api.openai.com") is None
