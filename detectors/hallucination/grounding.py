"""What an exchange offers to check its answer against, and whether that is enough to call it grounded.

The parsers list every request part as context, the user's last turn
included. Checked against that turn alone, an answer to "Who wrote Hamlet?"
would look entirely unsupported; checked against "You are a helpful
assistant." it would too. So the grounding is every part of the configured
roles except the question itself, and an exchange counts as grounded only
when that grounding says something: a document or tool result of any size,
at least `MIN_CONTEXT_WORDS` content words (stopwords left out) of system
prompt or earlier turns, or a question long enough to carry its own document
(`MIN_QUESTION_WORDS`, a "summarise this" request). Everything else takes the
no-context path.

A long persona prompt ("You are Ava, the assistant of Acme Bank...") is
grounding by this rule, and answers about anything else then look
unsupported: an application whose system prompt carries instructions rather
than facts should leave `system` out of `grounding_roles`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from detectors.hallucination.text import is_content, tokens
from genai_sre.events import Exchange

__all__ = ["GROUNDING_ROLES", "MIN_CONTEXT_WORDS", "MIN_QUESTION_WORDS", "Grounding", "grounding", "says_something"]

GROUNDING_ROLES = ("system", "user", "assistant", "tool", "document")
MIN_CONTEXT_WORDS = 8
MIN_QUESTION_WORDS = 60


@dataclass(frozen=True, slots=True)
class Grounding:
    text: str  # the context to check against, the question's own turn left out
    grounded: bool


def says_something(context: str, question: str, min_context_words: int = MIN_CONTEXT_WORDS) -> bool:
    """Enough context (content words) or a question long enough to carry a document."""
    if len(question.split()) >= MIN_QUESTION_WORDS:
        return True
    count = 0
    for token in tokens(context):
        count += is_content(token.lower())
        if count >= min_context_words:
            return True
    return False


def grounding(
    exchange: Exchange,
    roles: Collection[str] = GROUNDING_ROLES,
    min_context_words: int = MIN_CONTEXT_WORDS,
) -> Grounding:
    question = exchange.question.strip()
    parts = [
        p
        for p in exchange.context
        if p.kind in roles and p.text.strip() and not (p.kind == "user" and p.text.strip() == question)
    ]
    text = "\n\n".join(p.text for p in parts)
    grounded = any(p.kind in ("document", "tool") for p in parts) or says_something(text, question, min_context_words)
    return Grounding(text, grounded)
