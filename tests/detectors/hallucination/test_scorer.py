from __future__ import annotations

import time

import pytest

from detectors.hallucination import score_text
from detectors.hallucination.guard import score_result
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from tests.detectors.hallucination.test_features import CONTEXT, QUESTION


def test_faithful_paraphrase_scores_low() -> None:
    risk, _ = score_text(CONTEXT, QUESTION, "Completed in 1889, the Eiffel Tower stands 330 metres high.")
    assert risk < score_result(CONTEXT, QUESTION, "x").eval_threshold


def test_risk_orders_faithful_below_invented() -> None:
    faithful, _ = score_text(CONTEXT, QUESTION, "It was completed in 1889 and is 330 metres tall.")
    invented, why = score_text(
        CONTEXT, QUESTION, "It was completed in 1925 by Maurice Koechlin and is 512 metres tall, the tallest in Europe."
    )
    assert 0.0 <= faithful < 0.5 < invented <= 1.0
    assert "1925" in why or "Koechlin" in why


def test_result_carries_thresholds_shap_and_spans() -> None:
    answer = "It was completed in 1889. Its architect Maurice Koechlin later moved to Geneva in 1932."
    r = score_result(CONTEXT, QUESTION, answer)
    assert r.path == "grounded" and r.task == "short"
    assert 0 < r.slo_threshold <= 1 and 0 < r.eval_threshold <= 1
    assert r.features and all(isinstance(v, float) for _, v in r.features)
    assert r.claims and answer[r.claims[0].start : r.claims[0].end].startswith("Its architect")


def test_no_context_path_is_separate_and_uses_logprobs() -> None:
    scorer = HallucinationScorer()
    confident, unsure = scorer.score_batch(
        [
            ScoreInput("", "Who wrote Hamlet?", "Shakespeare wrote Hamlet.", (-0.01, -0.02, -0.05)),
            ScoreInput("", "Who wrote Hamlet?", "I think maybe Marlowe wrote it.", (-2.5, -3.0, -1.9, -4.0)),
        ]
    )
    assert confident.path == unsure.path == "no_context"
    assert confident.risk < unsure.risk
    assert "no grounding context" in unsure.explanation


def test_scores_are_reproducible_and_batch_independent() -> None:
    scorer = HallucinationScorer()
    items = [
        ScoreInput(CONTEXT, QUESTION, f"It was completed in {1880 + i} and is 330 metres tall.") for i in range(10)
    ]
    batch = [r.risk for r in scorer.score_batch(items)]
    single = [scorer.score_batch([it])[0].risk for it in items]
    assert batch == [r.risk for r in HallucinationScorer().score_batch(items)]
    assert single == pytest.approx(batch, abs=1e-12)  # BLAS may round a 1-row product differently


def test_guard_call_is_fast() -> None:
    context = " ".join([CONTEXT] * 12)  # about 1,000 tokens
    answer = " ".join(["It was completed in 1889 and is 330 metres tall, visited by 7 million people a year."] * 5)
    score_text(context, QUESTION, answer)  # warm: model load
    t = time.perf_counter()
    for i in range(20):
        score_text(context + str(i), QUESTION, answer)  # a new context each time: no index cache hit
    assert (time.perf_counter() - t) / 20 < 0.25  # typically 2-5 ms; generous for a loaded shared CI machine
