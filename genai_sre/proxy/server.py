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
        host_port = config.url.split("://", 1)[1].split("/", 1)[0]
        self.address, _, port = host_port.partition(":")
        self.port = int(port) if port else (443 if config.url.startswith("https") else 80)
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
        t0 = self.clock()
        started_at = self.wall()
        rid = request.headers.get(self.request_id_header)
        if not rid or not _REQUEST_ID.match(rid):
            rid = os.urandom(12).hex()
        probe = request.headers.get(PROBE_HEADER) == "1"
        path = request.path
        route = self.table.route(path)

        # Request body: bounded.
        declared = request.content_length
        if declared is not None and declared > self.max_body:
            return self._local_error(413, "request body exceeds the sidecar's limit", "request_too_large", rid)
        try:
            body = await self._read_body(request, declared)
        except _TooLarge:
            return self._local_error(413, "request body exceeds the sidecar's limit", "request_too_large", rid)
        except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError):
            return self._local_error(400, "could not read the request body", "bad_request", rid)

        model = extract_model(body) if body[:1] == b"{" else None
        up = self.upstreams[self.table.choose(path, model if self.table.by_model else None).name]
        trace = self._trace(request.headers.get("traceparent"), request.headers.get("tracestate"))
        headers = request_headers_for_upstream(request.headers)
        headers["traceparent"] = f"00-{trace.trace_id}-{trace.upstream_span_id}-{'01' if trace.sampled else '00'}"
        url = up.base + request.raw_path
        assert up.session is not None

        self.in_flight += 1
        self._inflight.labels(up.config.name).inc()
        status = 0
        resp_headers: dict[str, str] = {}
        captured = bytearray()
        chunks: list[tuple[int, float]] = []
        error: str | None = None
        t_sent = t_headers = t_first = t_last = None
        post_overhead = 0.0
        response: web.StreamResponse
        try:
            t_sent = self.clock()
            try:
                upstream_resp = await up.session.request(
                    request.method,
                    url,
                    data=body if body else None,
                    headers=headers,
                    allow_redirects=False,
                    proxy=up.proxy,
                )
            except TimeoutError:
                error = "timeout"
                response = self._local_error(504, f"upstream {up.config.name!r} timed out", "upstream_timeout", rid)
                return response
            except (aiohttp.ClientError, OSError) as exc:
                error = "connect"
                logger.warning(
                    "upstream %s unreachable: %s", up.config.name, exc.__class__.__name__, extra={"rid": rid}
                )
                response = self._local_error(
                    502, f"upstream {up.config.name!r} unreachable", "upstream_unreachable", rid
                )
                return response
            async with upstream_resp:
                t_headers = self.clock()
                status = upstream_resp.status
                out_headers = response_headers_for_client(upstream_resp.headers)
                out_headers["x-request-id"] = rid
                resp_headers = capturable(upstream_resp.headers.items())
                ctype = upstream_resp.headers.get("Content-Type", "")
                streaming = ctype.startswith("text/event-stream") or upstream_resp.content_length is None
                if not streaming:
                    try:
                        data = await upstream_resp.read()
                    except TimeoutError:
                        error = "timeout"
                        response = self._local_error(504, "upstream timed out", "upstream_timeout", rid)
                        return response
                    except (aiohttp.ClientError, OSError):
                        error = "cut"
                        response = self._local_error(502, "upstream closed the connection", "upstream_cut", rid)
                        return response
                    t_first = t_last = self.clock()
                    captured += data[: self.capture_limit]
                    chunks.append((len(data), t_last))
                    if self.guard is not None and status == 200 and self.guard.threshold(route) is not None:
                        data = await self._guard(route, up, body, data, out_headers)
                    response = web.Response(body=data, status=status, reason=upstream_resp.reason, headers=out_headers)
                    post_overhead = self.clock() - t_last
                    return response
                response = web.StreamResponse(status=status, reason=upstream_resp.reason, headers=out_headers)
                if upstream_resp.content_length is None:
                    response.enable_chunked_encoding()
                else:
                    response.content_length = upstream_resp.content_length
                await response.prepare(request)
                offset = 0
                try:
                    async for chunk in upstream_resp.content.iter_any():
                        t_chunk = self.clock()
                        if t_first is None:
                            t_first = t_chunk
                        offset += len(chunk)
                        if len(chunks) < MAX_CHUNK_TIMES:
                            chunks.append((offset, t_chunk))
                        if len(captured) < self.capture_limit:
                            captured += chunk[: self.capture_limit - len(captured)]
                        try:
                            await response.write(chunk)
                        except (ConnectionError, RuntimeError):
                            error = "client_disconnect"
                            return response
                        if offset == len(chunk):
                            post_overhead = self.clock() - t_chunk  # added time to first byte
                    t_last = self.clock()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    error = "timeout" if isinstance(exc, asyncio.TimeoutError) else "cut"
                    t_last = self.clock()
                    self._abort(request)
                    return response
                await response.write_eof()
                return response
        finally:
            self.in_flight -= 1
            self._inflight.labels(up.config.name).dec()
            self._finish(
                rid,
                request,
                path,
                route,
                up,
                model,
                body,
                status,
                resp_headers,
                bytes(captured),
                started_at,
                t0,
                t_sent,
                t_headers,
                t_first,
                t_last,
                chunks,
                error,
                probe,
                trace,
                post_overhead,
            )

    # -- helpers -------------------------------------------------------------------------------

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

    def _finish(
        self,
        rid: str,
        request: web.BaseRequest,
        path: str,
        route: str,
        up: _Upstream,
        model: str | None,
        body: bytes,
        status: int,
        resp_headers: dict[str, str],
        captured: bytes,
        started_at: float,
        t0: float,
        t_sent: float | None,
        t_headers: float | None,
        t_first: float | None,
        t_last: float | None,
        chunks: list[tuple[int, float]],
        error: str | None,
        probe: bool,
        trace: TraceIds,
        post_overhead: float,
    ) -> None:
        # Monitoring must never change the client's response: this is an isolation boundary.
        try:
            now = self.clock()
            name = up.config.name
            model_label = self.model_label(model)
            effective = status if error is None else (504 if error == "timeout" else 502)
            if error == "client_disconnect":
                effective = status
            self._requests.labels(name, route, model_label, status_class(effective)).inc()
            if error and error != "client_disconnect":
                self._errors.labels(name, route, error).inc()
            pre = (t_sent - t0) if t_sent is not None else 0.0
            self._overhead.labels(name, route).observe(pre + post_overhead)
            operation = _OPERATIONS.get(route, "other")
            error_type = error or (str(status) if status >= 500 else "")  # OTel: error.type, the status code
            self._duration.labels(operation, _provider(up.config), model_label, error_type).observe(now - t0)
            ok = error in (None, "client_disconnect") and 0 < status < 500
            tenant = request.headers.get(self.tenant_header)
            if self.sli is not None:
                self.sli.on_request(route, name, self.tenant_label(tenant) if tenant else None, ok, probe)
            self.offer(
                Capture(
                    id=rid,
                    method=request.method,
                    path=path,
                    route=route,
                    upstream=name,
                    request_headers=capturable(request.headers.items()),
                    request_body=body[: self.capture_limit],
                    request_truncated=len(body) > self.capture_limit,
                    status=status,
                    response_headers=resp_headers,
                    response_body=captured,
                    response_truncated=len(captured) >= self.capture_limit,
                    started_at=started_at,
                    t_received=t0,
                    t_upstream_sent=t_sent,
                    t_headers=t_headers,
                    t_first_byte=t_first,
                    t_last_byte=t_last if t_last is not None else now,
                    chunks=tuple(chunks),
                    error=error,  # type: ignore[arg-type]
                    probe=probe,
                    trace=trace,
                )
            )
        except Exception:  # isolation boundary: never let bookkeeping break a response
            logger.exception("failed to record request %s", rid)

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

    def _local_error(self, status: int, message: str, code: str, rid: str) -> web.Response:
        type_ = "invalid_request_error" if status < 500 else "upstream_error"
        return web.Response(
            status=status,
            body=error_body(message, code, type_),
            headers=CIMultiDict({"Content-Type": "application/json", "x-request-id": rid}),
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
