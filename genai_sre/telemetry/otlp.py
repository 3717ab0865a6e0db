"""OpenTelemetry export (OTLP): GenAI spans with evaluation events, and the metric table.

`build_otlp(config, metrics)` returns an `OTLPExporter`, or None when
`telemetry.otlp.enabled` is off. The exporter is an `EvaluationSink`:
`consume()` only appends the evaluation to a bounded queue (O(1), never
blocks; a full queue drops and counts). One background thread takes batches
from it, applies the sampler, builds the finished spans with the ids the proxy
already put on the wire (`genai_sre.telemetry.spans`), and hands them to the
SDK's OTLP span exporter; the same thread exports a snapshot of the metric
registry every `OTEL_METRIC_EXPORT_INTERVAL` (`genai_sre.telemetry.otlp_metrics`).

The spans are assembled as SDK `ReadableSpan` objects rather than started
through a `Tracer`: their ids are fixed before the exporter ever sees the
request (the proxy forwarded them in `traceparent`), and their timings come
from the capture. The SDK's exporters do the encoding, retries with backoff
and timeouts. Outcomes are counted in `genai_sre_otlp_exported_total{signal}`
and `genai_sre_otlp_dropped_total{signal, reason}`.

Wiring:

    exporter = build_otlp(config, sidecar.metrics)
    if exporter is not None:
        sidecar.sinks.append(exporter)
    ...
    await exporter.aclose()   # or exporter.shutdown() from sync code, after the pipeline stopped
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from genai_sre.config import Config
from genai_sre.events import Evaluation
from genai_sre.storage.redact import Redactor
from genai_sre.storage.redact import redact as default_redact
from genai_sre.telemetry.attribution import UserId
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.otlp_config import OTLPSettings, metric_exporter, resolve_settings, span_exporter
from genai_sre.telemetry.otlp_metrics import collect_metrics
from genai_sre.telemetry.spans import SCOPE, SpanBuilder

__all__ = ["OTLPExporter", "build_otlp"]

logger = logging.getLogger(__name__)


class OTLPExporter:
    """An `EvaluationSink` exporting traces and metrics by OTLP from a background thread."""

    def __init__(
        self,
        settings: OTLPSettings,
        metrics: Metrics,
        spans: SpanExporter | None = None,
        metric_sink: MetricExporter | None = None,
        redact: Callable[[str], str] | None = None,
        user_id: Callable[[str | None], str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._spans = spans if spans is not None else span_exporter(settings)
        self._metric_sink: MetricExporter | None = None
        if settings.export_metrics:
            self._metric_sink = metric_sink if metric_sink is not None else metric_exporter(settings)
        resource = settings.resource()
        self._builder = SpanBuilder(
            resource, settings.sampler, settings.capture_content, redact or default_redact, user_id
        )
        self._resource = resource
        self._queue: deque[Evaluation] = deque()
        self._exported = metrics.counter("genai_sre_otlp_exported")
        self._dropped = metrics.counter("genai_sre_otlp_dropped")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush = threading.Condition()
        self._flush_asked = 0
        self._flush_done = 0
        self._start_ns = time.time_ns()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="genai-sre-otlp", daemon=True)
        self._thread.start()

    # --- the pipeline side (event loop; must stay O(1)) ------------------------------------------

    def consume(self, evaluation: Evaluation) -> None:
        if self._closed:
            self._dropped.labels("traces", "shutdown").inc()
            return
        if evaluation.supplement or not self._builder.sampled(evaluation.exchange):
            return  # a supplement's exchange has its span already; its findings reach OTLP as metrics
        if len(self._queue) >= self.settings.max_queue_size:
            self._dropped.labels("traces", "queue_full").inc()
            return
        self._queue.append(evaluation)
        if len(self._queue) >= self.settings.max_batch_size and not self._wake.is_set():
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- control --------------------------------------------------------------------------------

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Export everything queued and a metric snapshot now; False if that took longer than `timeout_s`."""
        if self._closed:
            return False
        with self._flush:
            self._flush_asked += 1
            ticket = self._flush_asked
            self._wake.set()
            return self._flush.wait_for(lambda: self._flush_done >= ticket, timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is queued (bounded by `timeout_s`), then stop; what is left is counted as dropped."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout_s)
        # aborts a retry backoff still in progress against a slow or absent collector
        self._spans.shutdown()
        if self._metric_sink is not None:
            self._metric_sink.shutdown(timeout_millis=1000)
        self._thread.join(1.0)
        left = len(self._queue)
        self._queue.clear()
        if left:
            self._dropped.labels("traces", "shutdown").inc(left)

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """`shutdown()` without blocking the event loop."""
        await asyncio.to_thread(self.shutdown, timeout_s)

    # --- the export thread ----------------------------------------------------------------------

    def _run(self) -> None:
        next_metrics = time.monotonic() + self.settings.metric_interval_s
        while True:
            wait = max(0.01, min(self.settings.schedule_delay_s, next_metrics - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()
            stopping = self._stopping.is_set()
            with self._flush:
                ticket = self._flush_asked
            try:
                self._export_spans()
                if stopping or ticket > self._flush_done or time.monotonic() >= next_metrics:
                    self._export_metrics()
                    next_metrics = time.monotonic() + self.settings.metric_interval_s
            except Exception:  # isolation boundary: the export thread must survive any exporter bug
                logger.exception("OTLP export failed")
            with self._flush:
                self._flush_done = max(self._flush_done, ticket)
                self._flush.notify_all()
            if stopping:
                return

    def _export_spans(self) -> None:
        pending = len(self._queue)  # what is queued now: a steady inflow must not starve the metric export
        while pending > 0 and self._queue:
            batch: list[Evaluation] = []
            while self._queue and len(batch) < min(pending, self.settings.max_batch_size):
                batch.append(self._queue.popleft())
            pending -= len(batch)
            spans: list[ReadableSpan] = []
            built = 0
            now = time.time_ns()
            for evaluation in batch:
                try:
                    spans.extend(self._builder.build(evaluation, now))
                    built += 1
                except Exception:  # one malformed exchange must not lose the batch
                    logger.warning("could not build spans for exchange %s", evaluation.exchange.id, exc_info=True)
                    self._dropped.labels("traces", "build_error").inc()
            if spans:
                result = self._spans.export(spans)
                if result is SpanExportResult.SUCCESS:
                    self._exported.labels("traces").inc(built)
                else:
                    self._dropped.labels("traces", "export_failed").inc(built)

    def _export_metrics(self) -> None:
        if self._metric_sink is None:
            return
        data = collect_metrics(self.metrics.registry, self._resource, SCOPE, self._start_ns, time.time_ns())
        result = self._metric_sink.export(data, timeout_millis=self.settings.timeout_s * 1000)
        if result is MetricExportResult.SUCCESS:
            self._exported.labels("metrics").inc()
        else:
            self._dropped.labels("metrics", "export_failed").inc()


def build_otlp(
    config: Config, metrics: Metrics, env: Mapping[str, str] | None = None
) -> OTLPExporter | None:
    """The OTLP exporter the config asks for (`telemetry.otlp`, `OTEL_*` variables), or None when disabled.

    Raises `ConfigError` for an unknown protocol or sampler, or grpc without its package.
    """
    settings = resolve_settings(config.telemetry.otlp, os.environ if env is None else env)
    if not settings.enabled:
        return None
    logger.info(
        "OTLP export on",
        extra={
            "protocol": settings.protocol,
            "traces_endpoint": settings.traces_endpoint,
            "metrics": settings.export_metrics,
            "service_name": settings.service_name,
        },
    )
    return OTLPExporter(
        settings,
        metrics,
        redact=Redactor(config.storage.redaction),
        user_id=UserId.from_config(config.telemetry, env),
    )
