"""Metrics from evaluated exchanges (the pipeline side of `/metrics`).

The hot path records request counts, duration and overhead inline; what needs
the parsed exchange (time to first *content* token, time per output token,
detector scores and findings) is recorded here. Token usage, spend and the
client-side operation duration are `genai_sre.telemetry.usage`'s.
"""

from __future__ import annotations

from genai_sre.events import Evaluation
from genai_sre.proxy.routes import BoundedLabel
from genai_sre.telemetry.attribution import attribution_of
from genai_sre.telemetry.metrics import Metrics

__all__ = ["EvaluationMetrics"]


class EvaluationMetrics:
    """An `EvaluationSink` that feeds the GenAI server latency histograms and the score metrics."""

    def __init__(self, metrics: Metrics, model_label: BoundedLabel | None = None) -> None:
        self.metrics = metrics
        self.model_label = model_label or BoundedLabel()  # for exchanges without the proxy's label
        self._ttft = metrics.histogram("gen_ai_server_time_to_first_token_seconds")
        self._tpot = metrics.histogram("gen_ai_server_time_per_output_token_seconds")
        self._score = metrics.histogram("genai_sre_evaluation_score")
        self._findings = metrics.counter("genai_sre_findings")

    def consume(self, evaluation: Evaluation) -> None:
        ex = evaluation.exchange
        model = ex.labels.get("model") or self.model_label.observe(ex.model, ex.ok)
        op = (ex.operation, ex.provider, model)
        if ex.ok and not evaluation.supplement:  # a supplement's exchange was observed already
            if ex.ttft_s is not None:
                self._ttft.labels(*op).observe(ex.ttft_s)
            if ex.tpot_s is not None and not ex.usage.estimated:  # TPOT divides by the reported output tokens
                self._tpot.labels(*op).observe(ex.tpot_s)
        tenant, app = attribution_of(ex)
        for f in evaluation.findings:
            if f.score is not None and 0.0 <= f.score <= 1.0:
                self._score.labels(f.detector, f.name, ex.route, model).observe(f.score)
            self._findings.labels(f.detector, f.name, f.label or "none", ex.route, model, tenant, app).inc()
