"""The hot path: forward every request to its upstream and every byte back, unchanged.

Per request the proxy only copies bytes, reads the clock, updates a few O(1)
counters (requests, duration, overhead, availability SLI) and offers a bounded
copy of what it saw to the pipeline queue, which never blocks. Parsing, scoring
and disk I/O all happen later, off this path.

Failure mapping: upstream unreachable → 502, timeout before the response
headers → 504, both with an OpenAI-style JSON error body; a stream the upstream
cuts is cut for the client too (the connection is aborted, never ended cleanly);
a request body over the limit → 413.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import ssl
import time
import urllib.request
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from genai_sre.config import Config, UpstreamConfig
from genai_sre.events import Capture, TraceIds
from genai_sre.proxy.guard import Guard
from genai_sre.proxy.headers import capturable, request_headers_for_upstream, response_headers_for_client
from genai_sre.proxy.routes import BoundedLabel, UpstreamTable, extract_model
from genai_sre.telemetry.metrics import Metrics, status_class

__all__ = ["InlineSLI", "ProxyHandler", "error_body"]

logger = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROBE_HEADER = "x-genai-sre-probe"
MAX_CHUNK_TIMES = 512


class _TooLarge(Exception):
    pass


class _Trip:
    """What one request saw on its way through, filled in as it goes (mutable, one per request)."""

    __slots__ = (
        "t0", "started_at", "rid", "capture_id", "probe", "route", "body", "model", "up", "trace", "status",
        "resp_headers", "captured", "chunks", "error", "t_sent", "t_headers", "t_first", "t_last", "post_overhead",
    )  # fmt: skip

    def __init__(self, t0: float, started_at: float) -> None:
        self.t0 = t0
        self.started_at = started_at
        self.rid = ""
        self.capture_id = ""
        self.probe = False
        self.route = "other"
        self.body = b""
        self.model: str | None = None
        self.up: _Upstream
        self.trace: TraceIds | None = None
        self.status = 0
        self.resp_headers: dict[str, str] = {}
        self.captured = bytearray()
        self.chunks: list[tuple[int, float]] = []
        self.error: str | None = None
        self.t_sent: float | None = None
        self.t_headers: float | None = None
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.post_overhead = 0.0


class InlineSLI(Protocol):
    """Availability SLI events, counted inline so they never depend on later stages."""

    def on_request(self, route: str, upstream: str, tenant: str | None, ok: bool, probe: bool) -> None: ...


def error_body(message: str, code: str, type_: str = "upstream_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def _env_proxy(url: str, host: str) -> str | None:
    """The HTTP(S)_PROXY that applies to an upstream, honouring NO_PROXY; None for direct."""
    scheme = url.split("://", 1)[0]
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def _ssl_context(up: UpstreamConfig) -> ssl.SSLContext | bool:
    if not up.url.startswith("https"):
        return False
    if not up.verify_tls:
        return False
    ctx = ssl.create_default_context(cafile=up.ca_bundle) if up.ca_bundle else ssl.create_default_context()
    return ctx


class _Upstream:
    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(
            total=config.total_timeout_s, sock_connect=config.connect_timeout_s, sock_read=config.read_timeout_s
        )
        self.session: aiohttp.ClientSession | None = None
        parts = urlsplit(config.url)
        self.address = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.proxy = _env_proxy(config.url, self.address)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections,
            ssl=_ssl_context(self.config),
            ttl_dns_cache=300,
            enable_cleanup_closed=False,
        )
        # auto_decompress=False: bytes reach the client exactly as the upstream sent them.
        # HTTPS_PROXY / NO_PROXY are read once here (`self.proxy`), not per request as trust_env would.
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


class ProxyHandler:
    """The aiohttp low-level handler of the proxy port. It has no paths of its own."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        offer: Callable[[Capture], bool],
        sli: InlineSLI | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.offer = offer
        self.sli = sli
        self.clock = clock
        self.wall = wall
        self.table = UpstreamTable(config.upstreams, config.labels.routes)
        self.upstreams = {u.name: _Upstream(u) for u in config.upstreams}
        self.model_label = BoundedLabel(config.labels.models)
        self.tenant_label = BoundedLabel(config.labels.tenants)
        self.capture_limit = config.proxy.capture_limit_bytes
        self.max_body = config.proxy.max_body_bytes
        self.request_id_header = config.proxy.request_id_header
        self.tenant_header = config.labels.tenant_header
        self.in_flight = 0
        self.guard = Guard(config.proxy.guard) if config.proxy.guard.enabled else None
        self._requests = metrics.counter("genai_sre_requests")
        self._errors = metrics.counter("genai_sre_upstream_errors")
        self._overhead = metrics.histogram("genai_sre_proxy_overhead_seconds")
        self._duration = metrics.histogram("gen_ai_server_request_duration_seconds")
        self._inflight = metrics.gauge("genai_sre_in_flight_requests")
        self._children: dict[tuple[str, ...], object] = {}

    async def start(self) -> None:
        for up in self.upstreams.values():
            await up.start()
        if self.guard is not None:  # load the scorer's model now, not on the first guarded request
            await asyncio.to_thread(self.guard.scorer, "warm-up context.", "warm-up?", "warm-up answer.")

    async def aclose(self) -> None:
        for up in self.upstreams.values():
            await up.aclose()

    # -- the request path ----------------------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        trip = _Trip(self.clock(), self.wall())
        rid = request.headers.get(self.request_id_header)
        trip.rid = rid if rid and _REQUEST_ID.match(rid) else os.urandom(12).hex()
        # Stored under an id of our own (the client's id, when it sent one, plus a random suffix), so
        # a reused client id never overwrites earlier evidence.
        trip.capture_id = f"{rid}.{os.urandom(4).hex()}" if trip.rid == rid else trip.rid
        trip.probe = request.headers.get(PROBE_HEADER) == "1"
        trip.route = self.table.route(request.path)

        # Request body: bounded.
        declared = request.content_length
        if request.headers.get("Expect", "").lower() == "100-continue" and request.writer is not None:
            if declared is None or declared <= self.max_body:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client may send the body
        if declared is not None and declared > self.max_body:
            return self._refused(413, "request body exceeds the sidecar's limit", "request_too_large", trip)
        try:
            body = trip.body = await self._read_body(request, declared)
        except _TooLarge:
            return self._refused(413, "request body exceeds the sidecar's limit", "request_too_large", trip)
        except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError):
            return self._refused(400, "could not read the request body", "bad_request", trip)

        trip.model = extract_model(body) if body[:1] == b"{" else None
        up = trip.up = self.upstreams[self.table.choose(request.path, trip.model if self.table.by_model else None).name]
        trace = trip.trace = self._trace(request.headers.get("traceparent"), request.headers.get("tracestate"))
        headers = request_headers_for_upstream(request.headers)
        headers["traceparent"] = f"00-{trace.trace_id}-{trace.upstream_span_id}-{'01' if trace.sampled else '00'}"
        assert up.session is not None

        self.in_flight += 1
        self._inflight.labels(up.config.name).inc()
        try:
            trip.t_sent = self.clock()
            try:
                upstream_resp = await up.session.request(
                    request.method,
                    up.base + request.raw_path,
                    data=body if body else None,
                    headers=headers,
                    allow_redirects=False,
                    proxy=up.proxy,
                )
            except TimeoutError:
                trip.error = "timeout"
                return self._local_error(504, f"upstream {up.config.name!r} timed out", "upstream_timeout", trip.rid)
            except (aiohttp.ClientError, OSError) as exc:
                trip.error = "connect"
                logger.warning(
                    "upstream %s unreachable: %s", up.config.name, type(exc).__name__, extra={"rid": trip.rid}
                )
                message = f"upstream {up.config.name!r} unreachable"
                return self._local_error(502, message, "upstream_unreachable", trip.rid)
            async with upstream_resp:
                trip.t_headers = self.clock()
                trip.status = upstream_resp.status
                out_headers = response_headers_for_client(upstream_resp.headers)
                out_headers.setdefault("x-request-id", trip.rid)  # the upstream's own id wins
                out_headers["x-genai-sre-request-id"] = trip.rid
                trip.resp_headers = capturable(upstream_resp.headers.items())
                ctype = upstream_resp.headers.get("Content-Type", "")
                if ctype.startswith("text/event-stream") or upstream_resp.content_length is None:
                    return await self._stream(request, upstream_resp, out_headers, trip)
                return await self._whole(upstream_resp, out_headers, trip)
        finally:
            self.in_flight -= 1
            self._inflight.labels(up.config.name).dec()
            # Bookkeeping runs right after this task step, i.e. after aiohttp has written a
            # non-streaming response: the client does not wait for it.
            asyncio.get_running_loop().call_soon(self._finish, trip, request)

    async def _whole(self, upstream: aiohttp.ClientResponse, headers: CIMultiDict[str], trip: _Trip) -> web.Response:
        """A response with a known length: read it whole, then answer in one write."""
        try:
            data = await upstream.read()
        except TimeoutError:
            trip.error = "timeout"
            return self._local_error(504, "upstream timed out", "upstream_timeout", trip.rid)
        except (aiohttp.ClientError, OSError):
            trip.error = "cut"
            return self._local_error(502, "upstream closed the connection", "upstream_cut", trip.rid)
        trip.t_first = trip.t_last = self.clock()
        trip.captured += data[: self.capture_limit]
        trip.chunks.append((len(data), trip.t_last))
        if self.guard is not None and trip.status == 200 and self.guard.threshold(trip.route) is not None:
            data = await self._guard(trip.route, trip.up, trip.body, data, headers)
        response = web.Response(body=data, status=trip.status, reason=upstream.reason, headers=headers)
        trip.post_overhead = self.clock() - trip.t_last
        return response

    async def _stream(
        self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, headers: CIMultiDict[str], trip: _Trip
    ) -> web.StreamResponse:
        """A stream (SSE or chunked): forward each chunk as it arrives, timing it; never buffer."""
        response = web.StreamResponse(status=trip.status, reason=upstream.reason, headers=headers)
        if upstream.content_length is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = upstream.content_length
        await response.prepare(request)
        offset = 0
        try:
            async for chunk in upstream.content.iter_any():
                t_chunk = self.clock()
                if trip.t_first is None:
                    trip.t_first = t_chunk
                offset += len(chunk)
                if len(trip.chunks) < MAX_CHUNK_TIMES:
                    trip.chunks.append((offset, t_chunk))
                if len(trip.captured) < self.capture_limit:
                    trip.captured += chunk[: self.capture_limit - len(trip.captured)]
                try:
                    await response.write(chunk)
                except (ConnectionError, RuntimeError):
                    trip.error = "client_disconnect"
                    return response
                if offset == len(chunk):
                    trip.post_overhead = self.clock() - t_chunk  # added time to the first byte
            trip.t_last = self.clock()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            trip.error = "timeout" if isinstance(exc, TimeoutError) else "cut"
            trip.t_last = self.clock()
            self._abort(request)
            return response
        await response.write_eof()
        return response

    # -- helpers -------------------------------------------------------------------------------

    async def _read_body(self, request: web.BaseRequest, declared: int | None) -> bytes:
        if not request.body_exists:
            return b""
        if declared is not None:
            return await request.content.readexactly(declared)
        body = bytearray()
        while True:
            chunk = await request.content.readany()
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_body:
                raise _TooLarge

    async def _guard(self, route: str, up: _Upstream, body: bytes, data: bytes, headers: CIMultiDict[str]) -> bytes:
        """Opt-in guard mode: the client waits for the risk score of this answer (measured separately)."""
        assert self.guard is not None
        is_anthropic = up.config.provider == "anthropic" or (up.config.provider == "auto" and route == "/v1/messages")
        verdict = await self.guard.check(route, body, data, is_anthropic)
        if verdict is None:
            return data
        headers["x-genai-sre-hallucination-risk"] = f"{verdict.risk:.3f}"
        if verdict.refused:
            headers["x-genai-sre-guard"] = "refused"
        return verdict.body

    def _finish(self, trip: _Trip, request: web.BaseRequest) -> None:
        # Monitoring must never change the client's response: this is an isolation boundary.
        try:
            now = self.clock()
            up = trip.up
            name = up.config.name
            model_label = self.model_label(trip.model)
            error, status = trip.error, trip.status
            effective = status
            if error not in (None, "client_disconnect"):
                effective = 504 if error == "timeout" else 502
            self._requests.labels(name, trip.route, model_label, status_class(effective)).inc()
            if error and error != "client_disconnect":
                self._errors.labels(name, trip.route, error).inc()
            pre = (trip.t_sent - trip.t0) if trip.t_sent is not None else 0.0
            self._overhead.labels(name, trip.route).observe(pre + trip.post_overhead)
            operation = _OPERATIONS.get(trip.route, "other")
            error_type = error or (str(status) if status >= 500 else "")  # OTel: error.type, the status code
            self._duration.labels(operation, _provider(up.config), model_label, error_type).observe(now - trip.t0)
            ok = error in (None, "client_disconnect") and 0 < status < 500
            tenant = request.headers.get(self.tenant_header)
            if self.sli is not None:
                self.sli.on_request(trip.route, name, self.tenant_label(tenant) if tenant else None, ok, trip.probe)
            captured = bytes(trip.captured)
            self.offer(
                Capture(
                    id=trip.capture_id,
                    method=request.method,
                    path=request.path,
                    route=trip.route,
                    upstream=name,
                    request_headers=capturable(request.headers.items()),
                    request_body=trip.body[: self.capture_limit],
                    request_truncated=len(trip.body) > self.capture_limit,
                    status=status,
                    response_headers=trip.resp_headers,
                    response_body=captured,
                    response_truncated=len(captured) >= self.capture_limit,
                    started_at=trip.started_at,
                    t_received=trip.t0,
                    t_upstream_sent=trip.t_sent,
                    t_headers=trip.t_headers,
                    t_first_byte=trip.t_first,
                    t_last_byte=trip.t_last if trip.t_last is not None else now,
                    chunks=tuple(trip.chunks),
                    error=error,  # type: ignore[arg-type]
                    probe=trip.probe,
                    trace=trip.trace,
                )
            )
        except Exception:  # isolation boundary: never let bookkeeping break a response
            logger.exception("failed to record request %s", trip.rid)

    def _trace(self, traceparent: str | None, tracestate: str | None) -> TraceIds:
        parent = None
        sampled = True
        trace_id = None
        if traceparent:
            m = _TRACEPARENT.match(traceparent.strip().lower())
            if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
                trace_id, parent = m.group(1), m.group(2)
                sampled = bool(int(m.group(3), 16) & 1)
        ids = os.urandom(32).hex()
        return TraceIds(
            trace_id=trace_id or ids[:32],
            server_span_id=ids[32:48],
            upstream_span_id=ids[48:64],
            parent_span_id=parent,
            sampled=sampled,
            tracestate=tracestate if parent else None,
        )

    def _refused(self, status: int, message: str, code: str, trip: _Trip) -> web.Response:
        """A request the sidecar answers itself before choosing an upstream (counted, never forwarded)."""
        self._requests.labels("none", trip.route, "none", status_class(status)).inc()
        return self._local_error(status, message, code, trip.rid)

    def _local_error(self, status: int, message: str, code: str, rid: str) -> web.Response:
        type_ = "invalid_request_error" if status < 500 else "upstream_error"
        return web.Response(
            status=status,
            body=error_body(message, code, type_),
            headers=CIMultiDict(
                {"Content-Type": "application/json", "x-request-id": rid, "x-genai-sre-request-id": rid}
            ),
        )

    @staticmethod
    def _abort(request: web.BaseRequest) -> None:
        """Cut the client's connection so a cut upstream stream never looks like a clean end."""
        transport = request.transport
        if transport is not None:
            transport.abort()


_OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}


def _provider(up: UpstreamConfig) -> str:
    if up.provider == "azure":
        return "azure.ai.openai"
    if up.provider in ("anthropic", "openai"):
        return up.provider
    return up.provider if up.provider != "auto" else "openai"
