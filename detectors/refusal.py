"""The refusal detector (entry point `refusal`): a `refusal` finding for each answered exchange.

The classification itself is `detectors.common.refusal.RefusalClassifier`, which the bias detector
(refusal rates per group) and the hallucination detector (declines are not scored) share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from detectors.common.embedding import load_embedder
from detectors.common.refusal import DEFAULT_EXEMPLARS, RefusalClassifier
from genai_sre.detection.base import BaseDetector, DetectorContext
from genai_sre.events import Exchange, Finding

__all__ = ["RefusalDetector"]


class RefusalDetector(BaseDetector):
    """Reports `Finding(name="refusal", score, label="refused"|"answered")` for each exchange with an answer."""

    finding_names = ("refusal",)

    def __init__(
        self,
        extra_patterns: Sequence[str] = (),
        head_chars: int = 400,
        embedding: bool = False,
        similarity_threshold: float = 0.42,
        exemplars: Sequence[str] = DEFAULT_EXEMPLARS,
        context: DetectorContext | None = None,
    ) -> None:
        embedder = load_embedder() if embedding else None
        self.classifier = RefusalClassifier(
            extra_patterns=extra_patterns,
            head_chars=head_chars,
            embedder=embedder,
            exemplars=exemplars,
            similarity_threshold=similarity_threshold,
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
