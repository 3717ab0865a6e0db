"""The cascade: the lexical model scores every answer; those in its uncertain band also go to the cross-encoder.

An answer is *uncertain* when its lexical log-odds lie within `width` of its
task shape's evaluation threshold (in log-odds), the band chosen on dev (see
`cross_train.py`). For those, the final log-odds are the combiner fitted on
dev, `a * lexical + b * cross-encoder + c`; every other answer keeps its
lexical risk. The cross-encoder runs batched, in the caller's thread (the
detector's worker, never the event loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.hallucination.cross_encoder import CrossEncoder, CrossResult

__all__ = ["Cascade", "Refined"]


@dataclass(frozen=True, slots=True)
class Refined:
    logit: float  # the combined log-odds
    cross: CrossResult


class Cascade:
    """Second-stage refinement of uncertain answers, with the band and combiner stored in the artefact."""

    def __init__(self, path: Path | str | None = None, *, threads: int = 1, width: float | None = None) -> None:
        self.encoder = CrossEncoder(path, threads=threads)
        meta = self.encoder.meta
        self.width = float(meta.get("band_width_logit", 0.0)) if width is None else width
        a, b, c = meta.get("combiner", (1.0, 0.0, 0.0))
        self.combiner = (float(a), float(b), float(c))
        self.sent = 0

    def uncertain(self, logit: float, threshold: float) -> bool:
        t = min(max(threshold, 1e-9), 1 - 1e-9)
        return abs(logit - math.log(t / (1 - t))) <= self.width

    def refine(self, triples: Sequence[tuple[str, str, str]], logits: Sequence[float]) -> list[Refined]:
        """The combined log-odds of each (context, question, answer) given its lexical log-odds."""
        a, b, c = self.combiner
        self.sent += len(triples)
        return [
            Refined(a * lex + b * r.logit + c, r) for lex, r in zip(logits, self.encoder.score(triples), strict=True)
        ]
