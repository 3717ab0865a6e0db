"""The shipped artefact: loads, scores dev above a floor, and retraining reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.hallucination.evaluate import HallucinationEvaluator
from detectors.hallucination.features import extract
from detectors.hallucination.model import DEFAULT_MODEL_PATH, RiskModel
from detectors.hallucination.train import train
from genai_sre.errors import ConfigError
from genai_sre.evaluation import evaluate, load_dataset

DATA = Path(__file__).resolve().parents[3] / "bench" / "data" / "hallucination"
DATASETS = [DATA / "ragtruth.jsonl.gz", DATA / "summedits.jsonl.gz"]


def test_artefact_is_json_with_schema_and_thresholds() -> None:
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    assert data["format"] == "genai-sre/hallucination-risk-lr"
    assert len(data["coef"]) == len(data["columns"]) == len(data["mean"])
    model = RiskModel.load()
    assert 0 < model.eval_threshold("qa") < 1 and 0 < model.slo_threshold <= 1
    assert model.meta["trained_on"] == "train split"


def test_bad_artefact_fails_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "model.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="model.json"):
        RiskModel.load(bad)


def test_dev_split_scores_above_floor() -> None:
    rows = load_dataset(DATA / "ragtruth.jsonl.gz", split="dev")
    report = evaluate(HallucinationEvaluator(), rows, latency_sample=5)
    assert report.overall.auroc >= 0.78
    assert report.overall.auroc >= report.overall.auroc_length + 0.10
    assert report.groups["qa"].balanced_accuracy >= 0.70
    # The SLO threshold keeps false alarms on faithful dev answers near 1%.
    assert report.overall.false_alarm_rate_at_slo <= 0.03


def test_calibrated_on_dev() -> None:
    rows = [r for p in DATASETS for r in load_dataset(p, split="dev")]
    risks = np.array([s.score for s in HallucinationEvaluator().score(rows)])
    labels = np.array([r.label for r in rows])
    # Mean predicted risk tracks the observed rate (0.5 means even odds, not a ranking score).
    assert abs(risks.mean() - labels.mean()) < 0.08


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_artefact(tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    train(DATASETS, out)
    assert json.loads(out.read_text()) == json.loads(DEFAULT_MODEL_PATH.read_text())


def test_closed_form_shap_equals_the_shap_library_and_adds_up() -> None:
    model = RiskModel.load()
    rows = load_dataset(DATA / "ragtruth.jsonl.gz", split="dev")[:64]
    X = np.array([extract(r.context, r.question, r.answer).values for r in rows])
    closed = model.explain(X)
    library = model.explain(X, method="shap")
    np.testing.assert_allclose(closed, library, atol=1e-10)
    # Additivity: expected value (the intercept, at the training mean) + contributions = logit.
    np.testing.assert_allclose(model.intercept + closed.sum(axis=1), model.logit(X), atol=1e-9)


def test_detector_can_use_the_shap_library() -> None:
    from detectors.hallucination.scorer import HallucinationScorer, ScoreInput

    item = ScoreInput("Paris is the capital of France.", "Capital?", "The capital is Lyon, says Jean Dupont.")
    a = HallucinationScorer(explainer="shap").score_batch([item])[0]
    b = HallucinationScorer().score_batch([item])[0]
    assert a.features == b.features and a.risk == b.risk
