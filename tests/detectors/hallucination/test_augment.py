"""Synthetic short answers: deterministic, balanced, and invented ones differ by one figure or name."""

from __future__ import annotations

from detectors.hallucination.augment import SOURCE, short_answers
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from detectors.hallucination.text import words
from genai_sre.evaluation import DatasetRow
from tests.detectors.hallucination.test_features import CONTEXT, QUESTION

OTHER = (
    "Marie Curie won the Nobel Prize in Physics in 1903, shared with Pierre Curie and Henri Becquerel. "
    "In 1911 she won a second Nobel Prize, in Chemistry, for discovering polonium and radium."
)
ROWS = [
    DatasetRow("a", CONTEXT, QUESTION, "x", 0, "t", "train"),
    DatasetRow("b", OTHER, "", "x", 0, "t", "train"),
    DatasetRow("c", '{"name": "Finch"}', "", "x", 0, "t", "train"),  # structured: never used
]


def test_same_input_same_answers() -> None:
    assert short_answers(ROWS, 40, 7, "train") == short_answers(ROWS, 40, 7, "train")
    assert short_answers(ROWS, 40, 7, "train") != short_answers(ROWS, 40, 8, "train")
    assert short_answers(ROWS, 0, 7, "train") == [] and short_answers([], 5, 7, "train") == []


def test_rows_are_short_labelled_and_marked_synthetic() -> None:
    out = short_answers(ROWS, 60, 1, "dev")
    assert len(out) == 60
    assert {r.source for r in out} == {SOURCE} and {r.split for r in out} == {"dev"}
    assert all(r.context in (CONTEXT, OTHER) for r in out)
    assert all(len(r.answer.split()) <= 40 and r.question for r in out)
    labels = [r.label for r in out]
    assert 15 <= sum(labels) <= 45


def test_invented_answers_carry_a_figure_or_name_the_context_lacks() -> None:
    for r in short_answers(ROWS, 60, 2, "train"):
        context_words = {w.text.lower() for w in words(r.context)}
        novel = [w.text for w in words(r.answer) if w.text.lower() not in context_words]
        if r.label == 1:
            assert any(t[:1].isdigit() or t[:1].isupper() for t in novel), r.answer


def test_shipped_model_flags_one_wrong_figure_in_a_short_answer() -> None:
    scorer = HallucinationScorer()
    faithful, wrong_year, wrong_name = scorer.score_batch(
        [
            ScoreInput(CONTEXT, QUESTION, "It was completed in 1889."),
            ScoreInput(CONTEXT, QUESTION, "It was completed in 1925."),
            ScoreInput(OTHER, "Which prizes did she win?", "She won the Nobel Prize in Literature."),
        ]
    )
    assert not faithful.flagged and faithful.task == "short"
    assert wrong_year.flagged and wrong_name.flagged
