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
    assert 0 < model.eval_threshold("qa") < 1 and 0 < model.slo_threshold("qa") <= 1
    assert model.slo_threshold("no such task") == model.slo_threshold("*")
    assert model.meta["trained_on"] == "train split"
    # The task priors are the training shares of hallucinated answers, per task shape.
    assert 0.2 < model.prior("*") < 0.7 and set(model.priors) >= {"*", "qa", "summary", "data2text"}


def test_slo_threshold_is_never_below_the_flag_threshold() -> None:
    model = RiskModel.load()
    for task in model.slo_thresholds:
        assert model.slo_threshold(task) >= model.eval_threshold(task)


def test_format_1_artefact_with_one_slo_threshold_still_loads(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    data["thresholds"]["slo"] = 0.8
    data.pop("priors")
    old = tmp_path / "model.json"
    old.write_text(json.dumps(data))
    model = RiskModel.load(old)
    assert model.slo_threshold("qa") == 0.8 and model.priors == {}


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
    # The SLO thresholds keep false alarms on faithful dev answers near 1%, in every task shape.
    assert report.overall.false_alarm_rate_at_slo <= 0.02
    assert all(m.false_alarm_rate_at_slo <= 0.05 for m in report.groups.values())


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
