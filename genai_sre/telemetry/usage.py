"""Token usage, spend and the client-side call duration of every exchange (an `EvaluationSink`).

From the parsed exchange, off the request path:

- `gen_ai_client_token_usage` (input/output, as the upstream reported them) and
  `gen_ai_client_operation_duration_seconds` (the sidecar's call to the LLM
  API), with the GenAI convention's attributes;
- `genai_sre_tokens_total{model, tenant, app, token_type, source}`: input,
  output, cache_read, cache_write and reasoning tokens;
- `genai_sre_cost_usd_total{model, tenant, app, source}`: usage times the price
  table (`genai_sre.telemetry.pricing`);
- `genai_sre_usage_requests_total{model, tenant, app, pricing}`: priced,
  unpriced or no_usage, so an unpriced model shows up instead of costing 0.

Estimated usage (only with `telemetry.estimate_tokens`) is counted with
`source="estimated"` and never in the convention's histogram.
"""

from __future__ import annotations

from genai_sre.events import Evaluation
from genai_sre.proxy.routes import BoundedLabel
from genai_sre.telemetry.attribution import attribution_of
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.pricing import PriceTable
from genai_sre.telemetry.spans import error_type

__all__ = ["UsageMetrics"]


class UsageMetrics:
    def __init__(self, metrics: Metrics, prices: PriceTable, model_label: BoundedLabel | None = None) -> None:
        self.model_label = model_label or BoundedLabel()  # for exchanges without the proxy's model label
        self.prices = prices
        self._usage = metrics.histogram("gen_ai_client_token_usage")
        self._duration = metrics.histogram("gen_ai_client_operation_duration_seconds")
        self._tokens = metrics.counter("genai_sre_tokens")
        self._cost = metrics.counter("genai_sre_cost_usd")
        self._requests = metrics.counter("genai_sre_usage_requests")

    def consume(self, evaluation: Evaluation) -> None:
        if evaluation.supplement:  # the exchange was counted when it was first evaluated
            return
        ex = evaluation.exchange
        model = ex.labels.get("model") or self.model_label.observe(ex.model, ex.ok)
        op = (ex.operation, ex.provider, model)
        if ex.upstream_duration_s is not None:
            self._duration.labels(*op, error_type(ex) or "").observe(ex.upstream_duration_s)
        usage = ex.usage
        if not usage.estimated:
            if usage.input_tokens is not None:
                self._usage.labels(*op, "input").observe(usage.input_tokens)
            if usage.output_tokens is not None:
                self._usage.labels(*op, "output").observe(usage.output_tokens)
        tenant, app = attribution_of(ex)
        who = (model, tenant, app)
        if usage.input_tokens is None and usage.output_tokens is None:
            self._requests.labels(*who, "no_usage").inc()
            return
        source = "estimated" if usage.estimated else "usage"
        for token_type, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if count:
                self._tokens.labels(*who, token_type, source).inc(count)
        cost = self.prices.cost(ex.response_model, usage)  # the model that served it, often a dated snapshot
        if cost is None:
            cost = self.prices.cost(ex.model, usage)
        if cost is None:
            self._requests.labels(*who, "unpriced").inc()
            return
        self._requests.labels(*who, "priced").inc()
        self._cost.labels(*who, source).inc(cost)

