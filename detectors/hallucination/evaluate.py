"""The `hallucination` evaluator for `genai-sre eval` (entry point group `genai_sre.evaluators`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors.hallucination.cascade import Cascade
from detectors.hallucination.features import FEATURE_NAMES
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from detectors.hallucination.text import words
from detectors.hallucination.train import length_baseline
from genai_sre.errors import ConfigError
from genai_sre.evaluation import DatasetRow, ScoredRow

__all__ = ["HallucinationEvaluator"]


class HallucinationEvaluator:
    """Scores dataset rows with the risk model; groups results by inferred task shape.

    Each row also carries the two baselines the artefact records (fitted on train), reported next to
    the model: `task prior` (the training share of hallucinated answers of the row's task shape) and
    `task+length` (a logistic regression on the task shape and the answer's length).

    `cross_encoder="on"`: the score is the cascade's (lexical, then the cross-encoder in the uncertain
    band), reported next to the lexical model alone and the cross-encoder alone.
    """

    def __init__(
        self, *, model_path: Path | str | None = None, cross_encoder: str = "off", cross_encoder_path: str | None = None
    ) -> None:
        if cross_encoder not in ("on", "off"):
            raise ConfigError(f"cross_encoder must be 'on' or 'off', got {cross_encoder!r}")
        self.cascade = Cascade(cross_encoder_path, threads=2) if cross_encoder == "on" else None
        self.scorer = HallucinationScorer(model_path=model_path, cascade=self.cascade)
        self.lexical = HallucinationScorer(model=self.scorer.model) if self.cascade is not None else None
        model = self.scorer.model
        base = model.meta.get("baselines", {}).get("task_length")
        self._length = (np.asarray(base["coef"]), float(base["intercept"])) if base else None

    def score(self, rows: Sequence[DatasetRow]) -> Sequence[ScoredRow]:
        results = self.scorer.score_batch([ScoreInput(r.context, r.question, r.answer) for r in rows])
        others: list[list[tuple[str, float]]] = [[] for _ in rows]
        for k, r in enumerate(results):
            if r.path == "grounded" and not math.isnan(r.prior):
                others[k].append(("task prior", r.prior))
        if self.cascade is not None and self.lexical is not None:
            lexical = self.lexical.score_batch([ScoreInput(r.context, r.question, r.answer) for r in rows])
            cross = self.cascade.encoder.score([(r.context, r.question, r.answer) for r in rows])
            for k in range(len(rows)):
                others[k] += [("lexical", lexical[k].risk), ("cross-encoder", cross[k].logit)]
        if self._length is not None and rows:
            # Only the columns the baseline reads: the task shape and the answer's length.
            X = np.zeros((len(rows), len(FEATURE_NAMES)))
            for k, (row, res) in enumerate(zip(rows, results, strict=True)):
                X[k, FEATURE_NAMES.index("answer_words_log")] = math.log1p(len(words(row.answer)))
                X[k, FEATURE_NAMES.index(f"task_{res.task}")] = 1.0
            length = length_baseline(X) @ self._length[0] + self._length[1]
            for k in range(len(rows)):
                others[k].append(("task+length", float(length[k])))
        return [
            ScoredRow(score=r.risk, flagged=r.flagged, slo_flagged=r.slo_flagged, group=r.task, others=tuple(o))
            for r, o in zip(results, others, strict=True)
        ]
