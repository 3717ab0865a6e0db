"""Which exchanges are checked against a context, and which take the no-context path."""

from __future__ import annotations

import asyncio

import pytest

from detectors.hallucination import HallucinationDetector
from detectors.hallucination.grounding import grounding
from detectors.hallucination.guard import score_text
from genai_sre.errors import ConfigError
from genai_sre.events import ContextPart, Exchange
from tests import factories

QUESTION = "Who wrote Hamlet?"
FACTS = "The Golden Gate Bridge opened in May 1937. Its main span is 1280 metres long."


def exchange(
    *parts: ContextPart, question: str = QUESTION, answer: str = "Christopher Marlowe wrote it in 1720."
) -> Exchange:
    return factories.exchange(
        id="g", started_at=0.0, upstream="u", model="m", messages=(), context=(*parts, ContextPart("user", question)),
        question=question, answer=answer,
    )  # fmt: skip


def test_the_question_alone_or_a_persona_line_is_not_grounding() -> None:
    assert not grounding(exchange()).grounded
    assert grounding(exchange()).text == ""
    assert not grounding(exchange(ContextPart("system", "You are a helpful assistant. Be concise."))).grounded


def test_facts_documents_tool_results_and_long_questions_are() -> None:
    assert grounding(exchange(ContextPart("system", FACTS))).grounded
    assert grounding(exchange(ContextPart("tool", '{"temp": 21}'))).grounded  # any size
    assert grounding(exchange(ContextPart("document", "Paris."))).grounded
    long_question = "Summarise this: " + " ".join(["the council met and voted"] * 15)
    assert grounding(exchange(question=long_question)).grounded
    # The question's own turn is not part of the text checked against; earlier user turns are.
    both = grounding(exchange(ContextPart("user", FACTS), ContextPart("system", "Answer briefly.")))
    assert FACTS in both.text and QUESTION not in both.text


def test_roles_can_leave_the_system_prompt_out() -> None:
    ex = exchange(ContextPart("system", FACTS))
    assert not grounding(ex, roles=("user", "tool", "document")).grounded
    assert grounding(ex, min_context_words=50).grounded is False


def test_an_ungrounded_wrong_answer_takes_the_no_context_path() -> None:
    async def main() -> tuple[str, float]:
        det = HallucinationDetector()
        try:
            (finding,) = await det.detect(exchange())
            return str(finding.attributes["path"]), float(finding.score or 0.0)
        finally:
            await det.aclose()

    path, risk = asyncio.run(main())
    assert path == "no_context" and risk < 0.5  # a weak prior, not "100% unsupported by the question"


def test_guard_does_not_judge_what_it_cannot_check() -> None:
    risk, why = score_text("", QUESTION, "Christopher Marlowe wrote it in 1720.")
    assert risk == 0.0 and why.startswith("not checked")
    risk, _ = score_text(FACTS, "When did the bridge open?", "It opened in 1925.")
    assert risk > 0.5


def test_bad_grounding_options_fail_at_startup() -> None:
    with pytest.raises(ConfigError, match="grounding_roles"):
        HallucinationDetector(grounding_roles=("system", "memo"))
    with pytest.raises(ConfigError, match="grounding_roles"):
        HallucinationDetector(grounding_roles="system")
    with pytest.raises(ConfigError, match="min_context_words"):
        HallucinationDetector(min_context_words=-1)
