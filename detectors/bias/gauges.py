"""The bias detector's Prometheus gauges, built from the rows of `genai_sre.telemetry.metrics.METRICS`.

The sidecar hands its `Metrics` over as `context.metrics`; otherwise the
gauges are created on `context.registry`. Without either,
nothing is exported (replays and benchmarks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from detectors.bias.stats import Disparity
from detectors.bias.window import Tally
from genai_sre.detection.base import DetectorContext
from genai_sre.telemetry.metrics import Metrics, spec

__all__ = ["BIAS_METRICS", "BiasGauges", "PROBE_METRICS"]

logger = logging.getLogger(__name__)

BIAS_METRICS = (
    "genai_sre_fairness_disparity",
    "genai_sre_fairness_disparity_ratio",
    "genai_sre_fairness_group_outcome",
    "genai_sre_fairness_drift_psi",
)
PROBE_METRICS = ("genai_sre_probe_disparity", "genai_sre_probe_requests")


def metrics_for(context: DetectorContext | None, names: tuple[str, ...]) -> Metrics | None:
    """The shared `Metrics` from the context, or the named instruments on the context's registry."""
    if context is None:
        return None
    if context.metrics is not None:
        return context.metrics
    registry = context.registry
    if registry is None:
        return None
    try:
        return Metrics(registry, specs=[spec(n) for n in names])
    except ValueError:
        # The names are already registered by someone else on this registry; export on a private one.
        logger.warning("metrics %s already registered; pass context.metrics to share them", names[0])
        return Metrics(CollectorRegistry(), specs=[spec(n) for n in names])


class BiasGauges:
    def __init__(self, metrics: Metrics) -> None:
        self._disparity = metrics.gauge("genai_sre_fairness_disparity")
        self._ratio = metrics.gauge("genai_sre_fairness_disparity_ratio")
        self._group = metrics.gauge("genai_sre_fairness_group_outcome")
        self._psi = metrics.gauge("genai_sre_fairness_drift_psi")

    @classmethod
    def for_context(cls, context: DetectorContext | None) -> BiasGauges | None:
        metrics = metrics_for(context, BIAS_METRICS)
        return cls(metrics) if metrics is not None else None

    def disparity(self, attribute: str, metric: str, d: Disparity | None) -> None:
        if d is not None:
            self._disparity.labels(attribute, metric).set(d.gap)
            if d.ratio is not None:
                self._ratio.labels(attribute, metric).set(d.ratio)

    def group_outcomes(self, attribute: str, metrics: tuple[str, ...], tallies: Mapping[str, Tally]) -> None:
        for group, tally in tallies.items():
            for metric in metrics:
                if metric == "refusal":
                    if tally.n:
                        self._group.labels(attribute, group, metric).set(tally.refused / tally.n)
                    continue
                stat = tally.mean_stat(metric)
                if stat.n:
                    self._group.labels(attribute, group, metric).set(stat.mean)

    def drift(self, attribute: str, group: str, metric: str, value: float) -> None:
        self._psi.labels(attribute, group, metric).set(value)
