"""A real OTLP/HTTP receiver on loopback: decodes `/v1/traces` and `/v1/metrics` with opentelemetry-proto."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.harness import LoopThread, start_app


def value_of(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass
class Receiver:
    """Records every export; `delay_s` makes it slow, `status` makes it fail."""

    delay_s: float = 0.0
    status: int = 200
    url: str = ""
    raw: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metric_requests: list[ExportMetricsServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        return await self._receive(
            request, lambda b: self.traces.append(ExportTraceServiceRequest.FromString(b)), ExportTraceServiceResponse()
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return await self._receive(
            request,
            lambda b: self.metric_requests.append(ExportMetricsServiceRequest.FromString(b)),
            ExportMetricsServiceResponse(),
        )

    async def _receive(self, request: web.Request, keep: Callable[[bytes], None], reply: Any) -> web.Response:
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            self.raw.append(body)
            self.headers.append(dict(request.headers))
            if self.status == 200:
                keep(body)
        return web.Response(status=self.status, body=reply.SerializeToString(), content_type="application/x-protobuf")

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """(resource attributes, span) for every span received."""
        with self.lock:
            return [
                (attrs(rs.resource.attributes), span)
                for req in self.traces
                for rs in req.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

    def metrics(self) -> dict[str, Metric]:
        """The latest received data for each metric name."""
        out: dict[str, Metric] = {}
        with self.lock:
            for req in self.metric_requests:
                for rm in req.resource_metrics:
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            out[m.name] = m
        return out

    def wait_for(self, check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.02)
        return check()


@contextmanager
def receiver(delay_s: float = 0.0, status: int = 200) -> Iterator[Receiver]:
    rec = Receiver(delay_s=delay_s, status=status)
    lt = LoopThread()
    try:
        runner, port = lt.call(start_app(rec.app()))
        rec.url = f"http://127.0.0.1:{port}"
        try:
            yield rec
        finally:
            lt.call(runner.cleanup())
    finally:
        lt.stop()
