"""The detector through its async interface, on Exchange records."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from detectors.hallucination import HallucinationDetector
from detectors.hallucination.scorer import RiskResult, ScoreInput
from genai_sre.detection.base import Detector, DetectorContext
from genai_sre.errors import ConfigError
from genai_sre.events import ContextPart, Exchange
from genai_sre.plugins import build
from tests import factories
from tests.detectors.hallucination.test_features import CONTEXT, QUESTION


def make_exchange(answer: str, context: str = CONTEXT, question: str = QUESTION, **kw: Any) -> Exchange:
    parts = (ContextPart("system", "Answer from the documents."), ContextPart("document", context)) if context else ()
    return factories.exchange(
        question=question, answer=answer, context=parts, messages=(), model=None, upstream="mock", started_at=0.0, **kw
    )


def test_detect_returns_one_explained_finding() -> None:
    async def main() -> None:
        det = HallucinationDetector(context=DetectorContext(name="grounding"))
        try:
            assert isinstance(det, Detector)
            ok = (await det.detect(make_exchange("It was completed in 1889 and is 330 metres tall.")))[0]
            bad = (await det.detect(make_exchange("It was completed in 1925 by Maurice Koechlin in Lyon, 512 m.")))[0]
        finally:
            await det.aclose()
        assert ok.name == bad.name == "hallucination_risk"
        assert ok.label == "pass" and bad.label == "flagged"
        assert ok.score is not None and bad.score is not None and ok.score < bad.score
        assert bad.attributes["path"] == "grounded" and bad.attributes["task"] == "short"
        assert {"slo_threshold", "eval_threshold"} <= set(bad.attributes)
        assert bad.features and bad.evidence and "Koechlin" in bad.evidence[0].text
        assert bad.explanation.startswith("risk ")

    asyncio.run(main())


def test_no_context_path_is_labelled_and_empty_answer_is_skipped() -> None:
    async def main() -> None:
        det = HallucinationDetector()
        try:
            ex = make_exchange("Shakespeare wrote it.", context="", question="Who wrote Hamlet?", logprobs=(-0.1, -0.2))
            (finding,) = await det.detect(ex)
            assert finding.attributes["path"] == "no_context"
            assert await det.detect(make_exchange("")) == []
        finally:
            await det.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_concurrent_calls_are_batched(executor: str) -> None:
    async def main() -> None:
        det = HallucinationDetector(executor=executor, batch_size=16)  # type: ignore[arg-type]
        try:
            answers = [f"It was completed in {1880 + i} and is 330 metres tall." for i in range(40)]
            results = await asyncio.gather(*(det.detect(make_exchange(a)) for a in answers))
            assert det.batches < len(answers)
            risks = [r[0].score for r in results]
            assert risks[9] is not None and risks[12] is not None and risks[9] < risks[12]  # 1889 in context, 1892 not
        finally:
            await det.aclose()

    asyncio.run(main())


def test_scoring_runs_off_the_event_loop_thread() -> None:
    # Timing-free check of "never blocks the loop": the CPU work happens in the worker thread.
    # (Loop lag under load is measured by bench/hallucination_speed.py, not asserted here.)
    seen: set[int] = set()

    async def main() -> int:
        det = HallucinationDetector()
        real = det._scorer.score_batch

        def recording(items: Sequence[ScoreInput]) -> list[RiskResult]:
            seen.add(threading.get_ident())
            return real(items)

        det._scorer.score_batch = recording  # type: ignore[method-assign]
        try:
            await asyncio.gather(*(det.detect(make_exchange(f"Completed in {i}.")) for i in range(20)))
        finally:
            await det.aclose()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen and loop_thread not in seen


def test_built_from_config_and_bad_options_fail_fast() -> None:
    det = build("genai_sre.detectors", "grounding", "hallucination", {"batch_size": 8}, context=DetectorContext("g"))
    assert isinstance(det, HallucinationDetector) and det.batch_size == 8
    asyncio.run(det.aclose())
    with pytest.raises(ConfigError, match="embeddings"):
        HallucinationDetector(embeddings="cascade")
    with pytest.raises(ConfigError, match="model"):
        HallucinationDetector(model_path="/nonexistent/model.json")


def test_refusals_are_not_scored_for_hallucination() -> None:
    import asyncio

    from detectors.hallucination import HallucinationDetector
    from genai_sre import ContextPart, Exchange

    det = HallucinationDetector()
    ex = Exchange(
        id="r",
        started_at=0.0,
        provider="openai",
        operation="chat",
        route="/v1/chat/completions",
        upstream="u",
        status=200,
        stream=False,
        question="How tall is it?",
        answer="I'm sorry, but I can't help with that request.",
        context=(ContextPart("system", "The tower is 330 metres tall."),),
    )
    assert asyncio.run(det.detect(ex)) == []
    asyncio.run(det.aclose())


def test_apologies_that_assert_something_are_still_scored() -> None:
    from detectors.hallucination.detector import _is_refusal

    assert _is_refusal("I'm sorry, but I can't help with that request.")
    assert _is_refusal("I'm unable to provide that information.")
    assert not _is_refusal("I'm sorry, but the extra seat is not included. It costs $10 per month.")
    assert not _is_refusal("I can't help noticing the tower is 330 m tall.")
    assert not _is_refusal("I don't know.")


def test_abstentions_assert_nothing_and_are_not_scored() -> None:
    from detectors.hallucination.detector import _is_abstention

    for text in (
        "I don't know.",
        "I\u2019m not sure.",
        "Sorry, I do not have that information.",
        "The context does not mention the price of an extra seat.",
        "Unable to answer based on the given passages.",
    ):
        assert _is_abstention(text), text
    assert not _is_abstention("I don't know the exact figure, but it costs $10.")
    assert not _is_abstention("I'm not sure. I think it opened in 1925 and closed in 1930. It was red.")
    assert not _is_abstention("The Golden Gate Bridge opened in 1937.")
