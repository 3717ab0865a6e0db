"""Train the risk model: fit on `train`, choose on `dev`, write the JSON artefact.

Registered as the `hallucination` trainer (`genai-sre train hallucination
--dataset F [--dataset F ...] [--out model.json]`). Deterministic: the same
files give the same artefact, byte for byte.

Synthetic short answers (`augment.py`) are added to both splits: to train,
made from train contexts; to the choice of C, made from dev contexts.

Choices made on dev: the L2 strength C (mean of the per-dataset dev AUROCs,
the synthetic short answers counting as one dataset), the evaluation threshold
per inferred task (best balanced accuracy; `*` over all of dev), and the SLO
threshold (at most 1% of faithful dev answers at or above it); both thresholds
on real dev answers only.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.hallucination import augment
from detectors.hallucination.features import FEATURE_NAMES, TASKS, extract
from detectors.hallucination.model import DEFAULT_MODEL_PATH, Matrix, RiskModel, design_columns, expand
from genai_sre.errors import DatasetError
from genai_sre.evaluation import DatasetRow, auroc, load_dataset

__all__ = ["C_GRID", "MONOTONE", "SLO_FALSE_ALARM_RATE", "column_signs", "fit_logistic", "train", "train_model"]

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
MODEL_VERSION = "2"
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


def train_model(
    train_rows: Sequence[DatasetRow],
    dev_rows: Sequence[DatasetRow],
    *,
    meta: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    synthetic: tuple[int, int, int] = SYNTHETIC_SHORT,
) -> RiskModel:
    """Fit and choose; returns the model (not saved). `synthetic=(0, 0, 0)` trains on the rows alone."""
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
    X_train, _ = _features(train_rows)
    X_dev, dev_tasks = _features(dev_rows)
    y_train = np.array([r.label for r in train_rows], dtype=np.float64)
    y_dev = [r.label for r in dev_rows]
    design = expand(X_train)
    mean = design.mean(axis=0)
    scale = design.std(axis=0)
    scale[scale < 1e-12] = 1.0
    Z_train = (design - mean) / scale
    Z_dev = (expand(X_dev) - mean) / scale
    sources = sorted({r.source for r in dev_rows})

    best: tuple[float, float, Any] | None = None
    dev_auroc: dict[str, dict[str, float]] = {}
    for C in C_GRID:
        coef, intercept = fit_logistic(Z_train, y_train, C)
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
    risks, y_dev = all_risks[:n_real], y_dev[:n_real]
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
        }
    )
    return RiskModel(
        features=FEATURE_NAMES,
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        eval_thresholds=eval_thresholds,
        slo_threshold=_slo_threshold(y_dev, risks, SLO_FALSE_ALARM_RATE),
        version=MODEL_VERSION,
        meta=info,
    )


def train(
    datasets: Sequence[Path],
    out: Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The `genai-sre train hallucination` entry point: returns a summary of what it wrote."""
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
        "slo_threshold": saved.slo_threshold,
        "n_train": len(train_rows),
        "n_dev": len(dev_rows),
    }
