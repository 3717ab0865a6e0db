"""The risk does not move with irrelevant context, and follows a deployment's stated base rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from detectors.hallucination import HallucinationDetector, augment
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from genai_sre.errors import ConfigError
from genai_sre.evaluation import DatasetRow, auroc, load_dataset
from genai_sre.events import ContextPart
from tests import factories
from tests.detectors.hallucination.test_features import CONTEXT, QUESTION

DATA = Path(__file__).resolve().parents[3] / "bench" / "data" / "hallucination"


def dev_rows() -> list[DatasetRow]:
    return [r for name in ("ragtruth", "summedits") for r in load_dataset(DATA / f"{name}.jsonl.gz", split="dev")]


def risks(scorer: HallucinationScorer, rows: list[DatasetRow]) -> np.ndarray:
    return np.array([r.risk for r in scorer.score_batch([ScoreInput(r.context, r.question, r.answer) for r in rows])])


def test_irrelevant_context_moves_no_risk_by_more_than_0_05() -> None:
    rows = dev_rows()
    padded = augment.padded(rows, seed=7)
    assert all(len(p.context) > len(r.context) for p, r in zip(padded, rows, strict=True))
    scorer = HallucinationScorer()
    delta = np.abs(risks(scorer, rows) - risks(scorer, padded))
    assert len(delta) == 530 and delta.max() <= 0.05


def test_an_invented_sentence_scores_the_same_against_a_padded_context() -> None:
    answer = "The tower was sold in 1925 to the Maurice Koechlin trust for 40 million francs."
    filler = [
        "Honeybees communicate the location of flowers by dancing.",
        "The Amazon river carries more water than any other river.",
        "Sourdough bread rises because of wild yeast and lactobacilli.",
    ]
    padded = CONTEXT + " " + " ".join(filler * 10)
    short, long = (HallucinationScorer().score_batch([ScoreInput(c, QUESTION, answer)])[0] for c in (CONTEXT, padded))
    assert abs(short.risk - long.risk) <= 0.05 and short.flagged and long.flagged


def test_dev_aurocs_hold_without_the_context_length_features() -> None:
    scorer = HallucinationScorer()
    for name, floor in (("ragtruth", 0.80), ("summedits", 0.55)):
        rows = load_dataset(DATA / f"{name}.jsonl.gz", split="dev")
        assert auroc([r.label for r in rows], list(risks(scorer, rows))) >= floor


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_base_rate_makes_the_risk_calibrated_for_that_traffic(rate: float) -> None:
    rows = dev_rows()
    faithful = [r for r in rows if r.label == 0]
    invented = [r for r in rows if r.label == 1]
    k = round(rate * len(faithful) / (1 - rate))
    traffic = faithful + invented[:: len(invented) // k][:k]  # dev answers at the stated base rate
    plain, shifted = HallucinationScorer(), HallucinationScorer(base_rate=rate)
    items = [ScoreInput(r.context, r.question, r.answer) for r in traffic]
    before, after = plain.score_batch(items), shifted.score_batch(items)
    observed = np.mean([r.label for r in traffic])
    assert abs(np.mean([r.risk for r in after]) - observed) < 0.03  # 0.5 means even odds again
    assert np.mean([r.risk for r in before]) > observed + 0.15  # the training priors are 27-64%
    # Decisions do not change: the thresholds move with the risk.
    assert [r.flagged for r in before] == [r.flagged for r in after]
    assert [r.slo_flagged for r in before] == [r.slo_flagged for r in after]
    assert all(r.prior == rate for r in after if r.path == "grounded")


def test_base_rate_per_task_shape_and_bad_values() -> None:
    item = ScoreInput(CONTEXT, QUESTION, "It was completed in 1925 by Maurice Koechlin.")
    default = HallucinationScorer().score_batch([item])[0]
    per_task = HallucinationScorer(base_rate={"short": 0.01}).score_batch([item])[0]
    assert per_task.task == "short" and per_task.risk < default.risk and per_task.prior == 0.01
    other = HallucinationScorer(base_rate={"qa": 0.01}).score_batch([item])[0]
    assert other.risk == pytest.approx(default.risk)
    for bad in (0.0, 1.5, "half", {"poems": 0.1}, True):
        with pytest.raises(ConfigError, match="base_rate"):
            HallucinationScorer(base_rate=bad)  # type: ignore[arg-type]


def test_detector_option_reports_the_prior_it_used() -> None:
    async def run() -> dict[str, object]:
        det = HallucinationDetector(base_rate=0.02)
        ex = factories.exchange(
            context=(ContextPart("document", CONTEXT),), messages=(), question=QUESTION,
            answer="It was completed in 1925 by Maurice Koechlin.",
        )  # fmt: skip
        try:
            return dict((await det.detect(ex))[0].attributes)
        finally:
            await det.aclose()

    attributes = asyncio.run(run())
    assert attributes["prior"] == 0.02 and attributes["stage"] == "lexical"
