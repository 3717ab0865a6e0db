"""The refusal detector (entry point `refusal`): a `refusal` finding for each answered exchange.

The classification itself is `detectors.common.refusal.RefusalClassifier`, which the bias detector
(refusal rates per group) and the hallucination detector (declines are not scored) share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from detectors.common.embedding import load_embedder
from detectors.common.refusal import DEFAULT_EXEMPLARS, RefusalClassifier
from genai_sre.detection.base import BaseDetector, DetectorContext
from genai_sre.events import Exchange, Finding
from genai_sre.schema import Range, build

__all__ = ["RefusalDetector", "RefusalOptions"]


@dataclass(frozen=True)
class RefusalOptions:
    """The detector's `options:`: extra patterns, how much of the answer's head is searched, and the
    optional MiniLM similarity to refusal exemplars (needs the `embeddings` extra)."""

    extra_patterns: tuple[str, ...] = ()
    head_chars: Annotated[int, Range(min=20, max=100_000)] = 400
    embedding: bool = False
    similarity_threshold: Annotated[float, Range(min=0, max=1)] = 0.42
    exemplars: tuple[str, ...] = DEFAULT_EXEMPLARS


class RefusalDetector(BaseDetector):
    """Reports `Finding(name="refusal", score, label="refused"|"answered")` for each exchange with an answer."""

    finding_names = ("refusal",)

    def __init__(self, *, context: DetectorContext | None = None, **options: Any) -> None:
        self.options = opts = build(RefusalOptions, options, path=("options",))
        embedder = load_embedder() if opts.embedding else None
        self.classifier = RefusalClassifier(
            extra_patterns=opts.extra_patterns,
            head_chars=opts.head_chars,
            embedder=embedder,
            exemplars=opts.exemplars,
            similarity_threshold=opts.similarity_threshold,
        )

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        if not exchange.ok or (not exchange.answer and exchange.finish_reason != "content_filter"):
            return []
        if self.classifier.embedder is not None:
            result = await asyncio.to_thread(self.classifier.classify, exchange.answer, exchange.finish_reason)
        else:
            result = self.classifier.classify(exchange.answer, exchange.finish_reason)
        return [
            Finding(
                name="refusal",
                score=result.score,
                label="refused" if result.refused else "answered",
                explanation=f"refusal by {result.method}" if result.refused else "",
                evidence=(result.span,) if result.span else (),
                attributes={"method": result.method},
            )
        ]
