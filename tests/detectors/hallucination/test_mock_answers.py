"""The simulated upstream's faithful and invented answers are told apart (the demo relies on it)."""

from __future__ import annotations

import random

from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from genai_sre.evaluation import auroc
from genai_sre.mock.answers import faithful_answer, invented_answer
from tests.detectors.hallucination.test_features import CONTEXT

DOCS = [
    CONTEXT,
    "The Amazon river is about 6,400 km long. It flows through Peru, Colombia and Brazil. "
    "Its basin covers 7 million square kilometres and holds the largest rainforest on Earth.",
    "Python was created by Guido van Rossum and first released in 1991. Version 3.0 came out in 2008. "
    "The language is named after the comedy group Monty Python, not the snake.",
]
QUESTIONS = ["How tall is it?", "How long is the river and where does it flow?", "When was Python released?"]


def test_invented_answers_score_higher_and_are_flagged() -> None:
    rng = random.Random(7)
    items, labels = [], []
    for i in range(60):
        doc, q = DOCS[i % 3], QUESTIONS[i % 3]
        invented = i % 2 == 1
        answer = invented_answer(doc, q, rng) if invented else faithful_answer(doc, q, rng)
        items.append(ScoreInput(doc, q, answer))
        labels.append(int(invented))
    results = HallucinationScorer().score_batch(items)
    assert auroc(labels, [r.risk for r in results]) >= 0.95
    flagged = [r.flagged for r, y in zip(results, labels, strict=True) if y]
    false_alarms = [r.slo_flagged for r, y in zip(results, labels, strict=True) if not y]
    assert sum(flagged) / len(flagged) >= 0.8 and not any(false_alarms)
