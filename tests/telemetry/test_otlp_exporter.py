"""The exporter's queue, sampling and drop accounting, with the SDK's in-memory span exporter."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_sre.config import OTLPConfig
from genai_sre.events import Evaluation, TraceIds
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.otlp import OTLPExporter
from genai_sre.telemetry.otlp_config import resolve_settings
from tests.telemetry.test_spans import FINDING, STREAMED, TRACE

SLOW = {"OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}


def dropped(m: Metrics, reason: str) -> float:
    return m.registry.get_sample_value("genai_sre_otlp_dropped_total", {"signal": "traces", "reason": reason}) or 0.0


def test_bounded_queue_sampling_and_shutdown_are_counted() -> None:
    metrics = Metrics()
    memory = InMemorySpanExporter()
    settings = resolve_settings(OTLPConfig(enabled=True, export_metrics=False, max_queue_size=2), SLOW)
    exporter = OTLPExporter(settings, metrics, spans=memory)
    try:
        unsampled = TraceIds(TRACE.trace_id, "1" * 16, "2" * 16, parent_span_id=TRACE.parent_span_id, sampled=False)
        exporter.consume(Evaluation(replace(STREAMED, trace=unsampled)))
        assert exporter.queued == 0  # the client's parent was not sampled
        for _ in range(5):
            exporter.consume(Evaluation(STREAMED, (FINDING,)))
        assert exporter.queued == 2 and dropped(metrics, "queue_full") == 3
        assert exporter.force_flush(5.0)
        spans = memory.get_finished_spans()
        assert len(spans) == 4 and {s.kind.name for s in spans} == {"SERVER", "CLIENT"}
        exported = metrics.registry.get_sample_value("genai_sre_otlp_exported_total", {"signal": "traces"})
        assert exported == 2
    finally:
        exporter.shutdown(2.0)
    exporter.consume(Evaluation(STREAMED))
    assert dropped(metrics, "shutdown") == 1
    assert not exporter.force_flush(0.1)
