"""The risk model: a standardised logistic regression stored as JSON.

The design matrix is the task indicators plus each feature multiplied by each
task indicator: one linear model per inferred task shape, fitted jointly, so
the weight of, say, the unsupported-word share can differ between question
answering and summarisation. The artefact holds the
schema, standardisation, coefficients, thresholds and the dev metrics it was
chosen on; no pickle, so it can be reviewed in a diff and loaded anywhere.

Explanations are SHAP values in log-odds (interventional, background = the
training mean), with the interaction columns credited back to the feature they
multiply. `explain(X, method="shap")` computes them with `shap.LinearExplainer`;
the default `method="closed_form"` computes the same numbers as `coef * z`
(exact for a linear model; a test checks equality with the library) without
importing shap into the sidecar process: the import adds about 130,000 objects
to the heap, and every full garbage collection then holds the GIL, and so the
event loop, for about 135 ms (measured on the 2-core bench machine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from detectors.hallucination.features import FEATURE_NAMES, TASKS
from genai_sre.errors import ConfigError

__all__ = ["ARTEFACT_FORMAT", "DEFAULT_MODEL_PATH", "RiskModel", "design_columns", "expand"]

ARTEFACT_FORMAT = "genai-sre/hallucination-risk-lr"
DEFAULT_MODEL_PATH = Path(__file__).with_name("model.json")

Matrix = npt.NDArray[np.float64]
_TASK_COLUMNS = tuple(f"task_{t}" for t in TASKS)


def design_columns(features: Sequence[str] = FEATURE_NAMES) -> tuple[str, ...]:
    base = [f for f in features if f not in _TASK_COLUMNS]
    return tuple(t for t in features if t in _TASK_COLUMNS) + tuple(f"{f}*{t}" for t in _TASK_COLUMNS for f in base)


def expand(X: Matrix, features: Sequence[str] = FEATURE_NAMES) -> Matrix:
    """Task indicators, then each feature times each task indicator (order of `design_columns`)."""
    names = list(features)
    base = [i for i, f in enumerate(names) if f not in _TASK_COLUMNS]
    tasks = [i for i, f in enumerate(names) if f in _TASK_COLUMNS]
    parts = [X[:, tasks]]
    for t in _TASK_COLUMNS:
        parts.append(X[:, base] * X[:, [names.index(t)]])
    return np.hstack(parts)


@dataclass(frozen=True, eq=False)
class RiskModel:
    """A calibrated risk model: `predict` gives P(hallucination), 0.5 = even odds."""

    features: tuple[str, ...]
    mean: Matrix
    scale: Matrix
    coef: Matrix
    intercept: float
    eval_thresholds: Mapping[str, float]
    slo_thresholds: Mapping[str, float]
    priors: Mapping[str, float] = field(default_factory=dict)
    version: str = "1"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        columns = design_columns(self.features)
        owner = [self.features.index(c.split("*")[0]) for c in columns]
        self._set("_owner", np.array(owner))
        self._set("_explainer", None)

    def _shap_explainer(self) -> Any:
        if self._explainer is None:  # type: ignore[attr-defined]
            import shap  # deferred: see the module docstring

            background = (np.zeros_like(self.coef), None)
            self._set("_explainer", shap.LinearExplainer((self.coef, self.intercept), background))
        return self._explainer  # type: ignore[attr-defined]

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def eval_threshold(self, task: str) -> float:
        return float(self.eval_thresholds.get(task, self.eval_thresholds["*"]))

    def slo_threshold(self, task: str) -> float:
        return float(self.slo_thresholds.get(task, self.slo_thresholds["*"]))

    def prior(self, task: str) -> float:
        """The share of hallucinated answers of this task shape in the training data: the base rate
        the risk is calibrated to (`priors["*"]` over all of it). NaN for an artefact without priors."""
        return float(self.priors.get(task, self.priors.get("*", float("nan"))))

    def standardise(self, X: Matrix) -> Matrix:
        return (expand(X, self.features) - self.mean) / self.scale

    def logit(self, X: Matrix) -> Matrix:
        Z = self.standardise(X)
        return np.asarray(Z @ self.coef + self.intercept, dtype=np.float64)

    def predict(self, X: Matrix) -> Matrix:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logit(X))), dtype=np.float64)

    def explain(self, X: Matrix, method: Literal["closed_form", "shap"] = "closed_form") -> Matrix:
        """SHAP values per base feature (rows x features), in log-odds."""
        Z = self.standardise(X)
        if method == "shap":
            values = np.asarray(self._shap_explainer().shap_values(Z), dtype=np.float64)
        else:
            # Standardised columns have mean 0 over the training data (the background), so the
            # interventional SHAP value of column j is coef_j * z_j.
            values = Z * self.coef
        out = np.zeros((X.shape[0], len(self.features)))
        np.add.at(out.T, self._owner, values.T)  # type: ignore[attr-defined]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ARTEFACT_FORMAT,
            "version": self.version,
            "features": list(self.features),
            "columns": list(design_columns(self.features)),
            "mean": [_round(v) for v in self.mean],
            "scale": [_round(v) for v in self.scale],
            "coef": [_round(v) for v in self.coef],
            "intercept": _round(self.intercept),
            "thresholds": {
                "eval": {k: _round(v) for k, v in self.eval_thresholds.items()},
                "slo": {k: _round(v) for k, v in self.slo_thresholds.items()},
            },
            "priors": {k: _round(v) for k, v in self.priors.items()},
            "meta": dict(self.meta),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "<json>") -> RiskModel:
        if data.get("format") != ARTEFACT_FORMAT:
            raise ConfigError(f"{source}: not a hallucination risk model (format {data.get('format')!r}).")
        features = tuple(str(f) for f in data["features"])
        if features != FEATURE_NAMES:
            raise ConfigError(f"{source}: feature schema {features} does not match this detector's {FEATURE_NAMES}.")
        columns = design_columns(features)
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")}
        slo = data["thresholds"]["slo"]
        slo = slo if isinstance(slo, Mapping) else {"*": slo}  # format 1: one threshold for every task
        if any(a.shape != (len(columns),) for a in arrays.values()):
            raise ConfigError(f"{source}: expected {len(columns)} values in mean/scale/coef.")
        return cls(
            features=features,
            mean=arrays["mean"],
            scale=arrays["scale"],
            coef=arrays["coef"],
            intercept=float(data["intercept"]),
            eval_thresholds={str(k): float(v) for k, v in data["thresholds"]["eval"].items()},
            slo_thresholds={str(k): float(v) for k, v in slo.items()},
            priors={str(k): float(v) for k, v in data.get("priors", {}).items()},
            version=str(data.get("version", "1")),
            meta=dict(data.get("meta", {})),
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> RiskModel:
        p = Path(path) if path is not None else DEFAULT_MODEL_PATH
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read hallucination model {p}: {exc}") from exc
        try:
            return cls.from_json(data, str(p))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{p}: malformed hallucination model: {exc}") from exc


def _round(value: float) -> float:
    v = float(value)
    return 0.0 if v == 0 or not math.isfinite(v) else float(f"{v:.10g}")
