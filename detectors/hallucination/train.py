"""Train the risk model: fit on `train`, choose on `dev`, write the JSON artefact.

Registered as the `hallucination` trainer (`genai-sre train hallucination
--dataset F [--dataset F ...] [--out model.json]`). Deterministic: the same
files give the same artefact, byte for byte.

Synthetic short answers (`augment.py`) are added to both splits: to train,
made from train contexts; to the choice of C, made from dev contexts.

Choices made on dev: the L2 strength C (mean of the per-dataset dev AUROCs,
the synthetic short answers counting as one dataset) and the evaluation
threshold per inferred task (best balanced accuracy; `*` over all of real dev).
The SLO threshold per task shape is set so that at most 1% of faithful answers
reach it, counted on out-of-fold scores of 5-fold cross-validation over train
and dev (folds grouped by source document): a few dozen faithful dev answers
per task shape cannot place a 1% quantile.

The artefact also records the task priors (the share of hallucinated training
answers per task shape: the base rate the risk is calibrated to) and two
baselines fitted on train, for the evaluation table: the task prior alone and
task plus answer length.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.hallucination import augment
from detectors.hallucination.features import FEATURE_NAMES, TASKS, extract
from detectors.hallucination.model import DEFAULT_MODEL_PATH, Matrix, RiskModel, design_columns, expand
from genai_sre.errors import ConfigError, DatasetError
from genai_sre.evaluation import DatasetRow, auroc, load_dataset, source_key

__all__ = [
    "C_GRID",
    "MONOTONE",
    "SLO_FALSE_ALARM_RATE",
    "column_signs",
    "cross_validate",
    "fit_logistic",
    "fold_of",
    "length_baseline",
    "train",
    "train_model",
]

logger = logging.getLogger(__name__)

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
# Signs the risk must follow in each feature (others are free). Without them the
# collinear lexical features take opposite signs and extrapolate badly.
MONOTONE = {
    "unsupported_share": 1,
    "unsupported_sentence_max": 1,
    "unsupported_sentence_share": 1,
    "unsupported_count_log": 1,
    "novel_bigram_share": 1,
    "unsupported_numbers_log": 1,
    "unsupported_number_share": 1,
    "unsupported_names_log": 1,
    "number_mismatch_log": 1,
    "negation_mismatch_log": 1,
    "local_unsupported_mean": 1,
    "local_unsupported_max": 1,
    "best_match_mean": -1,
    "best_match_min": -1,
}
SLO_FALSE_ALARM_RATE = 0.01
MODEL_VERSION = "3"
CV_FOLDS = 5
# Task shapes with fewer faithful cross-validated answers than this share the overall SLO threshold.
MIN_FAITHFUL_FOR_SLO = 50
# Synthetic short answers: (train rows, dev rows, seed).
SYNTHETIC_SHORT = (600, 300, 20261127)


def _features(rows: Sequence[DatasetRow]) -> tuple[Matrix, list[str]]:
    feats = [extract(r.context, r.question, r.answer) for r in rows]
    return np.array([f.values for f in feats], dtype=np.float64), [f.task for f in feats]


def column_signs() -> list[int]:
    """+1 / -1 / 0 per design column: the sign its weight must have (0: free)."""
    return [MONOTONE.get(column.split("*")[0], 0) for column in design_columns(FEATURE_NAMES)]


def fit_logistic(Z: Matrix, y: Matrix, C: float, signs: Sequence[int] | None = None) -> tuple[Matrix, float]:
    """L2 logistic regression (sklearn's objective: C * log-loss sum + ||w||^2 / 2) with sign bounds."""
    from scipy.optimize import minimize

    def objective(theta: Matrix) -> tuple[float, Matrix]:
        b, w = theta[0], theta[1:]
        z = Z @ w + b
        # log(1 + e^z) - y z, computed stably
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z))
        p = 1.0 / (1.0 + np.exp(-z))
        g = p - y
        grad = np.concatenate(([C * g.sum()], C * (Z.T @ g) + w))
        return C * loss + 0.5 * float(w @ w), grad

    bounds: list[tuple[float | None, float | None]] = [(None, None)]  # intercept
    for sign in signs if signs is not None else column_signs():
        bounds.append((0.0, None) if sign > 0 else (None, 0.0) if sign < 0 else (None, None))
    theta0 = np.zeros(Z.shape[1] + 1)
    res = minimize(
        objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000, "gtol": 1e-9}
    )
    return np.asarray(res.x[1:], dtype=np.float64), float(res.x[0])


def _best_balanced_threshold(y: Sequence[int], scores: Sequence[float]) -> float:
    pos = sum(y)
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return 0.5
    pairs = sorted(zip(scores, y, strict=True), reverse=True)
    best_t, best_b, tp, fp = 1.0, -1.0, 0, 0
    for i, (s, lab) in enumerate(pairs):
        tp += lab
        fp += 1 - lab
        if i + 1 < len(pairs) and pairs[i + 1][0] == s:
            continue
        b = (tp / pos + (neg - fp) / neg) / 2
        if b > best_b:
            best_b, best_t = b, s
    return float(best_t)


def _slo_threshold(y: Sequence[int], scores: Sequence[float], rate: float) -> float:
    faithful = sorted((s for s, lab in zip(scores, y, strict=True) if lab == 0), reverse=True)
    if not faithful:
        return 0.99
    allowed = math.floor(rate * len(faithful))
    return min(1.0, float(faithful[allowed]) + 1e-6)


def _fit_standardised(X: Matrix, y: Matrix, C: float) -> tuple[Matrix, Matrix, Matrix, float]:
    design = expand(X)
    mean = design.mean(axis=0)
    scale = design.std(axis=0)
    scale[scale < 1e-12] = 1.0
    coef, intercept = fit_logistic((design - mean) / scale, y, C)
    return mean, scale, coef, intercept


def fold_of(rows: Sequence[DatasetRow], folds: int = CV_FOLDS, seed: int = 0) -> list[int]:
    """A fold per row, grouped by source document (all answers to one context in one fold)."""
    keys = sorted({source_key(r) for r in rows})
    random.Random(seed).shuffle(keys)
    fold = {k: i % folds for i, k in enumerate(keys)}
    return [fold[source_key(r)] for r in rows]


def cross_validate(X: Matrix, y: Matrix, folds: Sequence[int], C: float) -> Matrix:
    """Out-of-fold risks: each fold scored by the model fitted on the others."""
    out = np.zeros(len(y))
    fold_ids = np.asarray(folds)
    for k in sorted(set(folds)):
        test = fold_ids == k
        mean, scale, coef, intercept = _fit_standardised(X[~test], y[~test], C)
        out[test] = 1.0 / (1.0 + np.exp(-(((expand(X[test]) - mean) / scale) @ coef + intercept)))
    return out


def _task_priors(tasks: Sequence[str], y: Sequence[float]) -> dict[str, float]:
    priors = {"*": float(np.mean(y))}
    for task in TASKS:
        labels = [lab for t, lab in zip(tasks, y, strict=True) if t == task]
        if labels:
            priors[task] = float(np.mean(labels))
    return priors


def length_baseline(X: Matrix) -> Matrix:
    """The task-plus-length baseline's design: per task shape an intercept and a log answer-length slope."""
    tasks = X[:, [FEATURE_NAMES.index(f"task_{t}") for t in TASKS]]
    length = X[:, [FEATURE_NAMES.index("answer_words_log")]]
    return np.hstack([tasks, tasks * length])


def _slo_thresholds(y: Sequence[float], risks: Sequence[float], tasks: Sequence[str]) -> dict[str, float]:
    out = {"*": _slo_threshold([int(v) for v in y], risks, SLO_FALSE_ALARM_RATE)}
    for task in TASKS:
        idx = [i for i, t in enumerate(tasks) if t == task]
        if sum(1 for i in idx if not y[i]) >= MIN_FAITHFUL_FOR_SLO:
            out[task] = _slo_threshold([int(y[i]) for i in idx], [risks[i] for i in idx], SLO_FALSE_ALARM_RATE)
    return out


def train_model(
    train_rows: Sequence[DatasetRow],
    dev_rows: Sequence[DatasetRow],
    *,
    meta: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    synthetic: tuple[int, int, int] = SYNTHETIC_SHORT,
    signs: Sequence[int] | None = None,
) -> RiskModel:
    """Fit and choose; returns the model (not saved). `synthetic=(0, 0, 0)` trains on the rows alone;
    `signs` replaces the sign constraints (`column_signs()`; all 0: unconstrained)."""
    if not train_rows or not dev_rows:
        raise DatasetError("Training needs rows in both the 'train' and the 'dev' split.")
    say = progress or (lambda msg: logger.info("%s", msg))
    n_train_synthetic, n_dev_synthetic, seed = synthetic
    real_dev = list(dev_rows)
    extra_train = augment.short_answers(train_rows, n_train_synthetic, seed, "train")
    extra_dev = augment.short_answers(real_dev, n_dev_synthetic, seed + 1, "dev")
    train_rows = [*train_rows, *extra_train]
    dev_rows = [*real_dev, *extra_dev]
    say(f"features: {len(train_rows)} train, {len(dev_rows)} dev answers")
    X_train, train_tasks = _features(train_rows)
    X_dev, dev_tasks = _features(dev_rows)
    y_train = np.array([r.label for r in train_rows], dtype=np.float64)
    y_dev = [r.label for r in dev_rows]
    design = expand(X_train)
    mean = design.mean(axis=0)
    scale = design.std(axis=0)
    scale[scale < 1e-12] = 1.0
    Z_train = (design - mean) / scale  # as in _fit_standardised
    Z_dev = (expand(X_dev) - mean) / scale
    sources = sorted({r.source for r in dev_rows})

    best: tuple[float, float, Any] | None = None
    dev_auroc: dict[str, dict[str, float]] = {}
    for C in C_GRID:
        coef, intercept = fit_logistic(Z_train, y_train, C, signs)
        p = 1.0 / (1.0 + np.exp(-(Z_dev @ coef + intercept)))
        per_source = {
            s: auroc([y for y, r in zip(y_dev, dev_rows, strict=True) if r.source == s],
                     [float(v) for v, r in zip(p, dev_rows, strict=True) if r.source == s])
            for s in sources
        }  # fmt: skip
        score = float(np.nanmean(list(per_source.values())))
        dev_auroc[str(C)] = {k: round(v, 4) for k, v in per_source.items()}
        say(f"C={C}: mean dev AUROC {score:.4f} {per_source}")
        if best is None or score > best[0] + 1e-9:
            best = (score, C, (coef, intercept))
    assert best is not None
    _, C, (coef, intercept) = best
    n_real = len(real_dev)
    all_risks = [float(v) for v in 1.0 / (1.0 + np.exp(-(Z_dev @ coef + intercept)))]
    # Per task shape: every dev answer of that shape, synthetic short answers included (real dev
    # holds only a handful of short answers). Overall and SLO thresholds: real dev answers only.
    eval_thresholds = {"*": _best_balanced_threshold(y_dev[:n_real], all_risks[:n_real])}
    for task in TASKS:
        idx = [i for i, t in enumerate(dev_tasks) if t == task]
        if sum(y_dev[i] for i in idx) and len(idx) - sum(y_dev[i] for i in idx):
            eval_thresholds[task] = _best_balanced_threshold([y_dev[i] for i in idx], [all_risks[i] for i in idx])
    # SLO thresholds from out-of-fold scores over train and dev (synthetic short answers included).
    X_all = np.vstack([X_train, X_dev])
    y_all = np.concatenate([y_train, np.asarray(y_dev, dtype=np.float64)])
    oof = cross_validate(X_all, y_all, fold_of([*train_rows, *dev_rows]), C)
    slo_thresholds = _slo_thresholds(list(y_all), [float(v) for v in oof], [*train_tasks, *dev_tasks])
    for shape, t in list(slo_thresholds.items()):  # the SLO counts as bad only answers that are also flagged
        slo_thresholds[shape] = max(t, eval_thresholds.get(shape, eval_thresholds["*"]))
    say(f"SLO thresholds (out-of-fold, {SLO_FALSE_ALARM_RATE:.0%} of faithful answers): {slo_thresholds}")
    base_coef, base_intercept = fit_logistic(length_baseline(X_train), y_train, 1.0, [0] * 2 * len(TASKS))
    info = dict(meta or {})
    info.update(
        {
            "trained_on": "train split",
            "chosen_on": "dev split",
            "C": C,
            "dev_auroc_by_C": dev_auroc,
            "n_train": len(train_rows) - len(extra_train),
            "n_dev": n_real,
            "synthetic_short_answers": {"train": len(extra_train), "dev": len(extra_dev), "seed": seed},
            "slo_false_alarm_rate": SLO_FALSE_ALARM_RATE,
            "slo_thresholds_from": f"{CV_FOLDS}-fold cross-validation over train and dev, grouped by source document",
            "baselines": {
                "task_length": {"coef": [float(v) for v in base_coef], "intercept": float(base_intercept)},
            },
        }
    )
    return RiskModel(
        features=FEATURE_NAMES,
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        eval_thresholds=eval_thresholds,
        slo_thresholds=slo_thresholds,
        priors=_task_priors(train_tasks, list(y_train)),
        version=MODEL_VERSION,
        meta=info,
    )


def train(
    datasets: Sequence[Path],
    out: Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    stage: str = "lexical",
) -> dict[str, Any]:
    """The `genai-sre train hallucination` entry point: returns a summary of what it wrote.

    `stage="cross-encoder"` trains the second stage instead (`cross_train.py`; torch, about an hour of CPU).
    """
    if stage == "cross-encoder":
        from detectors.hallucination.cross_train import train_cross_encoder

        return train_cross_encoder(datasets, out, progress=progress)
    if stage != "lexical":
        raise ConfigError(f"--stage must be 'lexical' or 'cross-encoder', got {stage!r}")
    rows: list[DatasetRow] = []
    digests: dict[str, str] = {}
    for path in datasets:
        rows.extend(load_dataset(path))
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    model = train_model(train_rows, dev_rows, meta={"datasets": digests}, progress=progress)
    # Round-trip through JSON so the returned model is exactly what was written.
    target = out or DEFAULT_MODEL_PATH
    model.save(target)
    saved = RiskModel.load(target)
    return {
        "out": str(target),
        "C": saved.meta["C"],
        "eval_thresholds": dict(saved.eval_thresholds),
        "slo_thresholds": dict(saved.slo_thresholds),
        "n_train": len(train_rows),
        "n_dev": len(dev_rows),
    }
