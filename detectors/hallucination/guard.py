"""Synchronous one-answer scoring for the opt-in guard mode.

Guard mode waits for the score before answering the client, so this is the
lexical path only (about 1-3 ms for a 100-token answer against 1,000 tokens of
context, less when the context was seen before). The shipped model is loaded
once, on first use.
"""

from __future__ import annotations

import threading

from detectors.hallucination.scorer import HallucinationScorer, RiskResult, ScoreInput

__all__ = ["score_result", "score_text"]

_lock = threading.Lock()
_scorer: HallucinationScorer | None = None


def _default_scorer() -> HallucinationScorer:
    global _scorer
    if _scorer is None:
        with _lock:
            if _scorer is None:
                _scorer = HallucinationScorer()
    return _scorer


def score_result(context: str, question: str, answer: str, logprobs: tuple[float, ...] | None = None) -> RiskResult:
    """The full result (risk, thresholds, claims, SHAP features) for one answer."""
    return _default_scorer().score_batch([ScoreInput(context, question, answer, logprobs)])[0]


def score_text(context: str, question: str, answer: str) -> tuple[float, str]:
    """`(risk, explanation)` for one answer; risk is P(hallucination) in [0, 1].

    An answer without grounding context gets risk 0.0: guard mode acts only on answers it can
    check against what the application supplied, never on the no-context path's weak prior.
    """
    result = score_result(context, question, answer)
    if result.path != "grounded":
        return 0.0, f"not checked: {result.explanation}"
    return result.risk, result.explanation
