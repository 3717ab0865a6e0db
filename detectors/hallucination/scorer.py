"""Synchronous batch scoring: features -> calibrated risk -> SHAP explanation.

`HallucinationScorer.score_batch` is the CPU work the async detector hands to
its worker, the function the evaluator calls, and (for one item) what guard
mode calls through `score_text`.

Two paths. *Grounded* (there is context, or a question long enough to carry a
document): the trained model. *No context*: nothing to check the answer
against, so a heuristic, uncalibrated prior from token log-probabilities (when
the upstream returned them) and hedging words; its findings say
`path="no_context"` and should be read as weak evidence.

**Base rate.** The grounded risk is calibrated to the training data, where the
share of hallucinated answers per task shape (the *task prior*, `model.priors`)
is 26-64%. `base_rate` states the share a deployment expects instead (one
number, or one per task shape): the logit is shifted by
`logit(base_rate) - logit(task prior)` (Bayes' rule with the answer's evidence
unchanged), so 0.5 means even odds for that traffic. The thresholds move by
the same shift, so what is flagged does not change, only the probability
reported with it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from detectors.hallucination.features import FEATURE_NAMES, TASKS, ClaimSpan, extract, infer_task
from detectors.hallucination.grounding import says_something
from detectors.hallucination.model import RiskModel

if TYPE_CHECKING:
    from detectors.hallucination.cascade import Cascade, Refined
from genai_sre.errors import ConfigError

__all__ = ["HallucinationScorer", "RiskResult", "ScoreInput", "check_base_rate"]

logger = logging.getLogger(__name__)

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
    prior: float = float("nan")  # the task prior the risk is calibrated to (the deployment's base rate if set)
    stage: str = "lexical"  # "cascade" when the cross-encoder refined it


class HallucinationScorer:
    """Scores answers against their grounding with a `RiskModel` (the shipped one by default)."""

    def __init__(
        self,
        model: RiskModel | None = None,
        *,
        model_path: Path | str | None = None,
        explainer: Literal["closed_form", "shap"] = "closed_form",
        base_rate: float | Mapping[str, float] | None = None,
        cascade: Cascade | None = None,
    ) -> None:
        self.model = model if model is not None else RiskModel.load(model_path)
        self.cascade = cascade
        self.explainer = explainer
        self.base_rate = check_base_rate(base_rate)
        if self.base_rate is not None and not self.model.priors:
            raise ConfigError("base_rate needs a model artefact that records its task priors (format 3 or later).")

    def prior(self, task: str) -> float:
        """The base rate the reported risk of this task shape is calibrated to."""
        if isinstance(self.base_rate, float):
            return self.base_rate
        if self.base_rate is not None and task in self.base_rate:
            return self.base_rate[task]
        return self.model.prior(task)

    def _shift(self, task: str) -> float:
        """Logit shift from the training prior of `task` to the deployment's base rate (0 when unset)."""
        if self.base_rate is None:
            return 0.0
        return _logit(self.prior(task)) - _logit(self.model.prior(task))

    def score_batch(self, items: Sequence[ScoreInput]) -> list[RiskResult]:
        results: list[RiskResult | None] = [None] * len(items)
        grounded = [i for i, it in enumerate(items) if _has_grounding(it)]
        if grounded:
            rows = [extract(items[i].context, items[i].question, items[i].answer) for i in grounded]
            X = np.array([r.values for r in rows], dtype=np.float64)
            logits = [float(v) for v in self.model.logit(X)]
            shap_values = self.model.explain(X, self.explainer)
            refined: dict[int, Refined] = {}
            if self.cascade is not None:
                band = [
                    k for k in range(len(grounded))
                    if self.cascade.uncertain(logits[k], self.model.eval_threshold(rows[k].task))
                ]  # fmt: skip
                if band:
                    triples = [(items[grounded[k]].context, items[grounded[k]].question, items[grounded[k]].answer)
                               for k in band]  # fmt: skip
                    try:
                        refined = dict(zip(band, self.cascade.refine(triples, [logits[k] for k in band]), strict=True))
                    except (RuntimeError, ValueError, IndexError) as exc:  # the lexical risks stand
                        logger.warning("hallucination cross-encoder failed on %d answer(s): %s", len(band), exc)
            for k, i in enumerate(grounded):
                results[i] = self._grounded_result(
                    logits[k], rows[k].task, rows[k].claims, X[k], shap_values[k], refined.get(k)
                )
        for i, it in enumerate(items):
            if results[i] is None:
                results[i] = self._no_context_result(it)
        return [r for r in results if r is not None]

    def _grounded_result(
        self,
        logit: float,
        task: str,
        claims: tuple[ClaimSpan, ...],
        x: np.ndarray,
        contrib: np.ndarray,
        refined: Refined | None = None,
    ) -> RiskResult:
        if refined is not None:
            logit = refined.logit
        shift = self._shift(task)
        risk = _sigmoid(logit + shift)
        eval_t = _sigmoid(_logit(self.model.eval_threshold(task)) + shift)
        slo_t = _sigmoid(_logit(self.model.slo_threshold(task)) + shift)
        order = np.argsort(-np.abs(contrib))[:_TOP_FEATURES]
        top = tuple((FEATURE_NAMES[j], round(float(contrib[j]), 4)) for j in order if abs(contrib[j]) > 1e-9)
        share = x[FEATURE_NAMES.index("unsupported_share")]
        prior = self.prior(task)
        parts = [
            f"risk {risk:.2f} ({task}, prior {prior:.2f}): {share:.0%} of answer content words are not in the context"
        ]
        numbers = math.expm1(x[FEATURE_NAMES.index("unsupported_numbers_log")])
        if numbers >= 0.5:
            parts.append(f"{numbers:.0f} number(s) not in the context")
        if claims:
            words = ", ".join(dict.fromkeys(w for c in claims for w in c.unsupported[:3]))
            parts.append(f"{len(claims)} weakly supported sentence(s), e.g. {words}")
        if top:
            parts.append("top factors " + ", ".join(f"{n} {v:+.2f}" for n, v in top[:3]))
        if refined is not None:
            worst = refined.cross.least_supported
            parts.append(
                "cross-encoder: " + (f"least supported sentence {worst.text[:160]!r}" if worst else "no sentence")
            )
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
            prior=prior,
            stage="lexical" if refined is None else "cascade",
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
        slo_t = self.model.slo_threshold("*")
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


def check_base_rate(value: object) -> float | dict[str, float] | None:
    """A valid `base_rate` option (None, a rate, or a rate per task shape), or a ConfigError naming the problem."""
    if value is None:
        return None
    items = value.items() if isinstance(value, Mapping) else [("*", value)]
    out: dict[str, float] = {}
    for task, rate in items:
        if task != "*" and task not in TASKS:
            raise ConfigError(f"base_rate: unknown task shape {task!r}; expected one of {', '.join(TASKS)}")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.001 <= float(rate) <= 0.999:
            raise ConfigError(f"base_rate must be a share between 0.001 and 0.999, got {rate!r}")
        out[str(task)] = float(rate)
    return out["*"] if not isinstance(value, Mapping) else out


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _has_grounding(item: ScoreInput) -> bool:
    if not item.answer.strip():
        return False
    if item.grounded is not None:
        return item.grounded
    return says_something(item.context, item.question)
