"""Options of the bias detector (the `options:` mapping of its entry in the sidecar config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from detectors.bias.groups import GroupConfig
from detectors.bias.units import UNIT_SOURCES, UnitSource

__all__ = ["DEFAULT_THRESHOLDS", "BiasConfig"]

# Disparity at which a metric fails: refusal rate gap (absolute), sentiment gap (VADER compound),
# length gap (relative to the larger group mean), hallucination-risk gap (absolute score).
DEFAULT_THRESHOLDS: Mapping[str, float] = {"refusal": 0.05, "sentiment": 0.2, "length": 0.3, "hallucination_risk": 0.1}
_KNOWN = ("refusal", "sentiment", "length", "latency", "hallucination_risk")


@dataclass(frozen=True)
class BiasConfig:
    """Every key is documented in docs/fairness.md.

    The disparity gate: within each sliding window of `windows_s` (short ones
    react fast to large gaps, long ones see small gaps), groups with at least
    `min_count` events are compared; the widest gap must be significant at
    `alpha` (Bonferroni over the group pairs) before it scores. The finding's
    score is the gated gap divided by the metric's threshold, so the SLO
    threshold is 1.0 for every metric.

    `units`: what makes repeated requests one unit of evidence (`user`: the
    exchange's user or session key; `prompt`: identical prompts), first
    available wins; `[]` treats every exchange as independent. `max_units`
    bounds the clusters kept open per window.
    """

    groups: GroupConfig = field(default_factory=GroupConfig)
    # the detector instance whose `hallucination_risk` finding is the `hallucination_risk` outcome (None: off)
    risk_detector: str | None = "hallucination"
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    windows_s: tuple[float, ...] = (60.0, 120.0, 600.0, 1800.0)
    bucket_s: float = 10.0
    evaluate_every_s: float = 10.0
    min_count: int = 40
    alpha: float = 0.0001
    test: Literal["exact", "z", "chi2"] = "exact"
    confidence: float = 0.95
    exclude_groups: tuple[str, ...] = ("other",)
    units: tuple[UnitSource, ...] = UNIT_SOURCES
    max_units: int = 50_000
    examples: int = 5
    refusal_patterns: tuple[str, ...] = ()
    drift_window_s: float = 3600.0
    drift_every_s: float = 60.0
    drift_min_count: int = 200
    psi_threshold: float = 0.25
    reference: Literal["trailing_day", "pinned"] = "trailing_day"
    baseline_file: str | None = None
    embedding_drift: bool = False
    embedding_sample: int = 200
    embedding_every_s: float = 900.0
    embedding_cpu_share: float = 0.1
    mmd_threshold: float = 0.015

    def __post_init__(self) -> None:
        unknown = sorted(set(self.thresholds) - set(_KNOWN))
        if unknown:
            raise ValueError(f"thresholds: unknown metric {unknown[0]!r} (known: {', '.join(_KNOWN)})")
        if any(v <= 0 for v in self.thresholds.values()):
            raise ValueError("thresholds must be positive")
        if not 0 < self.alpha < 1 or not 0 < self.confidence < 1:
            raise ValueError("alpha and confidence must lie in (0, 1)")
        if not self.windows_s:
            raise ValueError("windows_s needs at least one window")
        if self.bucket_s <= 0 or min(self.windows_s) < self.bucket_s or self.drift_window_s < 300.0:
            raise ValueError("bucket_s must be positive and no longer than any window; drift_window_s at least 300")
        if self.min_count < 1 or self.drift_min_count < 1:
            raise ValueError("min_count and drift_min_count must be at least 1")
        if self.max_units < 1:
            raise ValueError("max_units must be at least 1")
        if not 0 < self.embedding_cpu_share <= 1:
            raise ValueError("embedding_cpu_share must lie in (0, 1]")
        if self.reference == "pinned" and not self.baseline_file:
            raise ValueError("reference: pinned needs baseline_file")
