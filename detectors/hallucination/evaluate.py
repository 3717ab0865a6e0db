"""The `hallucination` evaluator for `genai-sre eval` (entry point group `genai_sre.evaluators`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from genai_sre.evaluation import DatasetRow, ScoredRow

__all__ = ["HallucinationEvaluator"]


class HallucinationEvaluator:
    """Scores dataset rows with the risk model; groups results by inferred task shape."""

    def __init__(self, *, model_path: Path | str | None = None) -> None:
        self.scorer = HallucinationScorer(model_path=model_path)

    def score(self, rows: Sequence[DatasetRow]) -> Sequence[ScoredRow]:
        results = self.scorer.score_batch([ScoreInput(r.context, r.question, r.answer) for r in rows])
        return [ScoredRow(score=r.risk, flagged=r.flagged, slo_flagged=r.slo_flagged, group=r.task) for r in results]
