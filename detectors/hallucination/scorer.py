"""Synchronous batch scoring: features -> calibrated risk -> SHAP explanation.

`HallucinationScorer.score_batch` is the CPU work the async detector hands to
its worker, the function the evaluator calls, and (for one item) what guard
mode calls through `score_text`.

Two paths. *Grounded* (there is context, or a question long enough to carry a
document): the trained model. *No context*: nothing to check the answer
against, so a heuristic, uncalibrated prior from token log-probabilities (when
the upstream returned them) and hedging words; its findings say
`path="no_context"` and should be read as weak evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from detectors.hallucination.features import FEATURE_NAMES, ClaimSpan, extract, infer_task
from detectors.hallucination.grounding import says_something
from detectors.hallucination.model import RiskModel

__all__ = ["HallucinationScorer", "RiskResult", "ScoreInput"]

_LOW_PROB_LOGP = math.log(0.1)
_HEDGES = re.compile(
    r"\b(i think|i believe|probably|possibly|perhaps|maybe|might|may be|not sure|i'm not certain|as far as i know|"
    r"it is likely|it seems|i cannot verify|i don't know|unclear)\b",
    re.IGNORECASE,
)
_TOP_FEATURES = 5


@dataclass(frozen=True, slots=True)
class ScoreInput:
    """One answer to score. `grounded=None`: decided from the texts (see `grounding.py`)."""

    context: str
    question: str
    answer: str
    logprobs: tuple[float, ...] | None = None
    grounded: bool | None = None


@dataclass(frozen=True, slots=True)
class RiskResult:
    risk: float
    flagged: bool
    slo_flagged: bool
    task: str
    path: str
    eval_threshold: float
    slo_threshold: float
    features: tuple[tuple[str, float], ...]
    claims: tuple[ClaimSpan, ...]
    explanation: str


class HallucinationScorer:
    """Scores answers against their grounding with a `RiskModel` (the shipped one by default)."""

    def __init__(
        self,
        model: RiskModel | None = None,
        *,
        model_path: Path | str | None = None,
        explainer: Literal["closed_form", "shap"] = "closed_form",
    ) -> None:
        self.model = model if model is not None else RiskModel.load(model_path)
        self.explainer = explainer

    def score_batch(self, items: Sequence[ScoreInput]) -> list[RiskResult]:
        results: list[RiskResult | None] = [None] * len(items)
        grounded = [i for i, it in enumerate(items) if _has_grounding(it)]
        if grounded:
            rows = [extract(items[i].context, items[i].question, items[i].answer) for i in grounded]
            X = np.array([r.values for r in rows], dtype=np.float64)
            risks = self.model.predict(X)
            shap_values = self.model.explain(X, self.explainer)
            for k, i in enumerate(grounded):
                results[i] = self._grounded_result(float(risks[k]), rows[k].task, rows[k].claims, X[k], shap_values[k])
        for i, it in enumerate(items):
            if results[i] is None:
                results[i] = self._no_context_result(it)
        return [r for r in results if r is not None]

    def _grounded_result(
        self, risk: float, task: str, claims: tuple[ClaimSpan, ...], x: np.ndarray, contrib: np.ndarray
    ) -> RiskResult:
        eval_t = self.model.eval_threshold(task)
        slo_t = self.model.slo_threshold
        order = np.argsort(-np.abs(contrib))[:_TOP_FEATURES]
        top = tuple((FEATURE_NAMES[j], round(float(contrib[j]), 4)) for j in order if abs(contrib[j]) > 1e-9)
        share = x[FEATURE_NAMES.index("unsupported_share")]
        parts = [f"risk {risk:.2f} ({task}): {share:.0%} of answer content words are not in the context"]
        numbers = math.expm1(x[FEATURE_NAMES.index("unsupported_numbers_log")])
        if numbers >= 0.5:
            parts.append(f"{numbers:.0f} number(s) not in the context")
        if claims:
            words = ", ".join(dict.fromkeys(w for c in claims for w in c.unsupported[:3]))
            parts.append(f"{len(claims)} weakly supported sentence(s), e.g. {words}")
        if top:
            parts.append("top factors " + ", ".join(f"{n} {v:+.2f}" for n, v in top[:3]))
        return RiskResult(
            risk=risk,
            flagged=risk >= eval_t,
            slo_flagged=risk >= slo_t,
            task=task,
            path="grounded",
            eval_threshold=eval_t,
            slo_threshold=slo_t,
            features=top,
            claims=claims,
            explanation="; ".join(parts),
        )

    def _no_context_result(self, item: ScoreInput) -> RiskResult:
        hedges = len(_HEDGES.findall(item.answer))
        terms: list[tuple[str, float]] = [("hedging_words", 0.4 * min(hedges, 3))]
        if item.logprobs:
            lps = item.logprobs
            mean_nll = -sum(lps) / len(lps)
            low = sum(1 for lp in lps if lp < _LOW_PROB_LOGP) / len(lps)
            terms += [("logprob_mean_nll", 0.8 * min(mean_nll, 4.0)), ("low_probability_share", 4.0 * low)]
        logit = -1.5 + sum(v for _, v in terms)
        risk = 1.0 / (1.0 + math.exp(-logit))
        eval_t = self.model.eval_threshold("*")
        slo_t = self.model.slo_threshold
        basis = "token log-probabilities and hedging" if item.logprobs else "hedging only (no log-probabilities)"
        return RiskResult(
            risk=risk,
            flagged=risk >= eval_t,
            slo_flagged=risk >= slo_t,
            task=infer_task(item.context, item.question, item.answer),
            path="no_context",
            eval_threshold=eval_t,
            slo_threshold=slo_t,
            features=tuple((n, round(v, 4)) for n, v in terms if v),
            claims=(),
            explanation=f"risk {risk:.2f}: no grounding context; low-confidence estimate from {basis}",
        )


def _has_grounding(item: ScoreInput) -> bool:
    if not item.answer.strip():
        return False
    if item.grounded is not None:
        return item.grounded
    return says_something(item.context, item.question)
