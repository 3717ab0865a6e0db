"""Render `docs/metrics.md` from the metric table: `python -m genai_sre.telemetry.metrics_doc > docs/metrics.md`."""

from __future__ import annotations

from genai_sre.telemetry.metrics import METRICS

__all__ = ["render"]

HEADER = """# Metrics

Every metric genai-sre exports, generated from the one table that defines them
(`genai_sre/telemetry/metrics.py`); a test keeps this page in step with it.
Prometheus names are shown as exposed on the admin port's `/metrics` (counters end
in `_total`, histograms add `_bucket`, `_sum`, `_count`). The same instruments go
over OTLP when it is enabled; the GenAI semantic-convention metrics use their
OpenTelemetry names there (column "OTLP name").

Label values are bounded: routes, models, tenants and group values outside the
configured allow-lists are exported as `other`; no label carries free text, a
prompt or a user id. `tenant` and `app` come from the `labels.tenant_header`
and `labels.app_header` request headers (`none` when absent; without an
allow-list at most `labels.max_values` values, earned by successful requests,
get a label of their own); the sidecar's own probe requests are
`tenant="genai-sre", app="probes"`.

Besides the table, `/metrics` carries the client library's process and runtime
collectors (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
`process_open_fds`, ..., `python_info`, `python_gc_*`), so the sidecar's own CPU
and memory can be watched, and no `_created` series.

Spend: `genai_sre_cost_usd_total` is reported usage times the price table
(`telemetry.prices`: the table shipped in `genai_sre/resources/prices.yaml`,
from LiteLLM 1.108.7's price list, with config overrides); a model not in it is
counted in `genai_sre_usage_requests_total{pricing="unpriced"}`, never guessed,
and a response without usage in `pricing="no_usage"`. Cost per request is
`rate(genai_sre_cost_usd_total[5m]) / rate(genai_sre_usage_requests_total{pricing="priced"}[5m])`.

| Name | Type | Unit | Labels | OTLP name | Description |
| --- | --- | --- | --- | --- | --- |
"""


def render() -> str:
    rows = []
    for m in METRICS:
        labels = ", ".join(f"`{label}`" for label in m.labels) or "–"
        otel = f"`{m.otel_name}`" if m.otel_name else "–"
        kind = m.kind + (" (scrape time)" if getattr(m, "collected", False) else "")
        rows.append(f"| `{m.exposed_name}` | {kind} | {m.unit or '–'} | {labels} | {otel} | {m.description} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
