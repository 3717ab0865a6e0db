"""Did the model refuse? Phrase patterns at the head of the answer, plus optional embedding similarity.

Shared by the refusal, bias and hallucination detectors.

Patterns catch the common refusal openings ("I'm sorry, but I can't ...",
"As an AI, I cannot ..."). Only the first `head_chars` characters are searched,
so an answer that merely *quotes* a refusal later on is not one. When
`embedding` is on, an answer the patterns miss is also compared with refusal
exemplars by MiniLM cosine similarity; the default threshold (0.42) separates
six paraphrased refusals (similarity 0.46-0.73) from six ordinary answers
(0.02-0.30) in the tests, a small calibration set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.common.embedding import Embedder, cosine_max
from genai_sre.events import Span

__all__ = ["DEFAULT_EXEMPLARS", "DEFAULT_PATTERNS", "RefusalClassifier", "RefusalResult"]

DEFAULT_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid)\b.{0,40}\b(?:can(?:'|no)?t|cannot|unable|won'?t|not able)\b",
    r"\bI(?: can(?:'|no)?t| cannot| won'?t| will not|(?:'m| am) unable to|(?:'m| am) not able to)"
    r" (?:help|assist|provide|comply|do that|fulfil+|support|answer|create|write|share|give|engage)",
    r"\b(?:as an ai|as a language model)\b.{0,60}\b(?:can(?:'|no)?t|cannot|unable|not able|don'?t)\b",
    r"\b(?:against|violates?) (?:my|our|the) (?:guidelines|policies|policy|usage polic(?:y|ies))\b",
    r"\bI must (?:decline|refuse)\b",
    r"\bI(?:'d| would) (?:rather not|prefer not to)\b",
    r"\b(?:not (?:something|able) I can (?:help|assist) with)\b",
)

DEFAULT_EXEMPLARS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with this.",
    "I'm not able to provide that information.",
    "As an AI model I can't do that.",
    "Unfortunately I must decline to answer.",
    "That goes against my guidelines, so I won't help.",
)


@dataclass(frozen=True, slots=True)
class RefusalResult:
    refused: bool
    score: float
    method: str  # "pattern", "embedding", "filter", "none"
    span: Span | None = None


class RefusalClassifier:
    """Pure refusal check (sync). Thread-safe once built."""

    def __init__(
        self,
        patterns: Sequence[str] = DEFAULT_PATTERNS,
        extra_patterns: Sequence[str] = (),
        head_chars: int = 400,
        embedder: Embedder | None = None,
        exemplars: Sequence[str] = DEFAULT_EXEMPLARS,
        similarity_threshold: float = 0.42,
    ) -> None:
        if head_chars < 20:
            raise ValueError("head_chars must be at least 20")
        try:
            self._patterns = [re.compile(p, re.IGNORECASE | re.DOTALL) for p in (*patterns, *extra_patterns)]
        except re.error as exc:
            raise ValueError(f"bad refusal pattern: {exc}") from exc
        self.head_chars = head_chars
        self.embedder = embedder
        self.similarity_threshold = similarity_threshold
        self._exemplars = embedder.encode(list(exemplars)) if embedder is not None and exemplars else None

    def classify(self, answer: str, finish_reason: str | None = None) -> RefusalResult:
        if finish_reason == "content_filter":
            return RefusalResult(True, 1.0, "filter")
        head = answer[: self.head_chars].replace("\u2019", "'")
        for pattern in self._patterns:
            match = pattern.search(head)
            if match:
                span = Span(match.start(), match.end(), answer[match.start() : match.end()])
                return RefusalResult(True, 1.0, "pattern", span)
        if self._exemplars is not None and self.embedder is not None and head.strip():
            similarity = cosine_max(self.embedder.encode([head])[0], self._exemplars)
            return RefusalResult(similarity >= self.similarity_threshold, max(0.0, min(1.0, similarity)), "embedding")
        return RefusalResult(False, 0.0, "none")
