"""The hot path: forward every request to its upstream and every byte back, unchanged, as it arrives.

Per request the forwarder only checks the target, copies bytes, reads the
clock, updates a few plain counters (`ProxyStats`) and offers a bounded copy of
what it saw (`Capture`) to a channel that never blocks. Parsing, scoring and
disk I/O all happen elsewhere. Response bytes are written to the client from
the upstream connection's own callbacks; only the bounded capture copy is
kept, whatever the response's size.

Failure mapping: upstream unreachable → 502, timeout before the response
headers → 504, both with an OpenAI-style JSON body; a stream the upstream cuts
(or times out) is cut for the client too; a client that goes away closes the
upstream connection at once (the upstream stops generating) and the request is
counted as `disconnect`, never as a success.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import re
import time
from collections.abc import Callable

from genai_sre.config import Config, UpstreamConfig
from genai_sre.events import Capture, TraceIds, succeeded
from genai_sre.providers.classify import Classifier
from genai_sre.proxy.connection import ClientConnection, Request
from genai_sre.proxy.failover import Failover, FailoverEvent, Redirect, replace_model
from genai_sre.proxy.guard import Guard
from genai_sre.proxy.headers import Capturable, request_headers_for_upstream, response_headers_for_client
from genai_sre.proxy.probes import PROBE_HEADER
from genai_sre.proxy.routes import BoundedLabel, UpstreamTable, extract_model
from genai_sre.proxy.stats import OUTCOMES, ProxyStats
from genai_sre.proxy.target import BadTarget, Target, parse_target
from genai_sre.proxy.upstream import UpstreamConnection, UpstreamPool
from genai_sre.telemetry.attribution import NONE, PROBE_APP, PROBE_TENANT
from genai_sre.telemetry.metrics import status_class

__all__ = ["Forwarder"]

logger = logging.getLogger(__name__)

_PROBE = PROBE_HEADER.encode()
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_CHUNK_TIMES = 512
_REPLAYABLE = (b"GET", b"HEAD", b"OPTIONS")
_random = random.Random()  # ids need uniqueness, not secrecy (as the OpenTelemetry SDK's trace ids)


class Forwarder:
    """Chooses the upstream, forwards, answers the client, records what happened."""

    def __init__(
        self,
        config: Config,
        stats: ProxyStats,
        offer: Callable[[Capture], bool],
        probe_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_failover: Callable[[FailoverEvent], object] | None = None,
    ) -> None:
        self.config = config
        self.stats = stats
        self.offer = offer
        self.probe_token = probe_token.encode() if probe_token else None
        self.clock = clock
        self.wall = wall
        self.table = UpstreamTable(config.upstreams, config.labels.routes)
        self.pools = {u.name: UpstreamPool(u, idle_timeout_s=u.idle_timeout_s) for u in config.upstreams}
        self.model_label = BoundedLabel(config.labels.models, cap=config.labels.max_values)
        self.tenant_label = BoundedLabel(config.labels.tenants, cap=config.labels.max_values)
        self.app_label = BoundedLabel(config.labels.apps, cap=config.labels.max_values)
        self.capture_limit = config.proxy.capture_limit_bytes
        self.capturable = Capturable(config.labels, (config.proxy.request_id_header,))
        self.request_id_header = config.proxy.request_id_header.lower().encode()
        self.tenant_header = config.labels.tenant_header.lower().encode()
        self.app_header = config.labels.app_header.lower().encode()
        self.in_flight = 0
        self.guard = Guard(config.proxy.guard) if config.proxy.guard.enabled else None
        self.classify = Classifier(config.upstreams)
        self.failover = Failover(config.upstreams, stats, on_failover, clock=clock, wall=wall)

    async def start(self) -> None:
        for pool in self.pools.values():
            pool.start()
        if self.guard is not None:  # load the scorer's model now, not on the first guarded request
            await asyncio.to_thread(self.guard.scorer, "warm-up context.", "warm-up?", "warm-up answer.")

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()

    def sweep(self, now: float) -> None:
        for pool in self.pools.values():
            pool.sweep(now)

    def refused(self, reason: str, status: int, target: bytes = b"") -> None:
        """A request the sidecar answered itself (`status`) before forwarding, counted by reason and route."""
        self.stats.inc("genai_sre_refused_requests", (reason,))
        path = target.split(b"?", 1)[0]
        route = self.table.route(path.decode("latin-1")) if path.startswith(b"/") and len(path) < 2048 else "other"
        self.stats.inc("genai_sre_requests", ("none", route, "none", status_class(status), NONE, NONE))

    # -- the request path ----------------------------------------------------------------------

    def handle(self, req: Request, conn: ClientConnection) -> None:
        trip = _Trip(self, req, conn)
        conn.exchange = trip
        rid = req.header(self.request_id_header)
        if rid is not None and _REQUEST_ID.match(rid):
            trip.rid = rid
            # stored under an id of our own, so a reused client id never overwrites earlier evidence
            trip.capture_id = f"{rid}.{_random.getrandbits(32):08x}"
        else:
            trip.rid = trip.capture_id = f"{_random.getrandbits(96):024x}"
        try:
            target = parse_target(req.target)
        except BadTarget as exc:
            self.refused(exc.code, exc.status)
            conn.send_error(exc.status, exc.message, exc.code, trip.rid)
            return
        path = target.path_str
        trip.path = path
        trip.route = self.table.route(path)
        body = req.body
        trip.model = extract_model(body) if body[:1] == b"{" else None
        up = self.table.choose(path, trip.model if self.table.by_model else None)
        marker = req.lookup.get(_PROBE)
        trip.probe = (
            marker is not None and self.probe_token is not None and hmac.compare_digest(marker, self.probe_token)
        )
        trip.trace = trace = _trace(req.header(b"traceparent"), req.header(b"tracestate"))
        headers = request_headers_for_upstream(req.headers, _PROBE)
        failover = self.failover
        redirect = failover.redirect.get(up.name) if failover.redirect else None
        if redirect is not None:  # failed over: the fallback answers; now and then a copy probes the primary
            if trip.route != "other" and req.method == b"POST" and failover.probe_due(up.name):
                self._mirror(req, target, headers, trip, up)
            up = redirect.upstream
            body = self._redirected_body(trip, redirect, body)
        elif failover.watched and not trip.probe:
            trip.fallback = failover.retry_enabled(up.name)
            if trip.fallback is not None:  # kept to resend the request to the fallback (retry_before_first_byte)
                trip.target, trip.fwd_headers = target, headers
        pool = trip.pool = self.pools[up.name]
        trip.body = body
        trip.head = self._head(req, target, headers, pool, body, trace)
        self._start(trip)

    def _head(
        self, req: Request, target: Target, headers: list[tuple[bytes, bytes]], pool: UpstreamPool, body: bytes,
        trace: TraceIds,
    ) -> bytes:
        ep = pool.endpoint
        head = [req.method, b" ", ep.request_target(target.path, target.query), b" HTTP/1.1\r\nhost: ", ep.host_header]
        if ep.proxy is not None and ep.proxy.auth is not None and ep.ssl is None:
            head += [b"\r\nproxy-authorization: ", ep.proxy.auth]
        for name, value in headers:
            head += [b"\r\n", name, b": ", value]
        sampled = "01" if trace.sampled else "00"
        head += [b"\r\ntraceparent: ", f"00-{trace.trace_id}-{trace.upstream_span_id}-{sampled}".encode()]
        if body or req.method in (b"POST", b"PUT", b"PATCH"):
            head.append(b"\r\ncontent-length: %d" % len(body))
        head.append(b"\r\n\r\n")
        return b"".join(head)

    def _start(self, trip: _Trip) -> None:
        pool = trip.pool
        assert pool is not None
        self.in_flight += 1
        self.stats.add("genai_sre_in_flight_requests", (pool.config.name,), 1)
        trip.counted = True
        pooled = pool.take_idle()
        if pooled is not None:  # the fast path: no task, no await
            trip.send(pooled, reused=True)
            return
        trip.task = asyncio.get_running_loop().create_task(trip.connect_and_send())

    # -- fail-over (genai_sre.proxy.failover) ----------------------------------------------------

    @staticmethod
    def _redirected_body(trip: _Trip, redirect: Redirect, body: bytes) -> bytes:
        if redirect.model is None or body[:1] != b"{":
            return body
        trip.model = redirect.model.decode()  # labels and captures name the model that answered
        return replace_model(body, redirect.model)

    def _mirror(
        self, req: Request, target: Target, headers: list[tuple[bytes, bytes]], client: _Trip, primary: UpstreamConfig
    ) -> None:
        """Send a copy of this request to its (failed-over) primary as a probe; its answer goes nowhere."""
        probe = _Trip(self, req, _DISCARD)
        probe.rid = probe.capture_id = f"{_random.getrandbits(96):024x}"
        probe.probe = probe.mirror = True
        probe.path, probe.route, probe.model = client.path, client.route, client.model
        probe.pool = self.pools[primary.name]
        probe.trace = _trace(None, None)
        probe.body = req.body
        probe.head = self._head(req, target, headers, probe.pool, req.body, probe.trace)
        self._start(probe)

    def retry_on_fallback(self, trip: _Trip, reason: str) -> bool:
        """Resend a request that failed on its primary before any byte reached the client, once, to the fallback."""
        redirect, trip.fallback = trip.fallback, None
        old = trip.pool
        if redirect is None or old is None or trip.target is None or trip.fwd_headers is None or trip.done:
            return False
        primary = old.config.name
        self.failover.on_result(primary, False, reason)  # the primary's breaker counts the failure
        self.failover.on_retry(primary, reason)
        if trip.upstream is not None:
            trip.upstream.abandon()
            trip.upstream = None
        self.stats.add("genai_sre_in_flight_requests", (primary,), -1)
        self.in_flight -= 1
        pool = trip.pool = self.pools[redirect.upstream.name]
        body = self._redirected_body(trip, redirect, trip.req.body)
        trip.body = body
        assert trip.trace is not None
        trip.head = self._head(trip.req, trip.target, trip.fwd_headers, pool, body, trip.trace)
        trip.status, trip.resp_headers, trip.t_headers, trip.reused, trip.task = 0, {}, None, False, None
        self._start(trip)
        return True

    # -- bookkeeping, right after the response --------------------------------------------------

    def finish(self, trip: _Trip) -> None:
        # Monitoring must never change the client's response: this is an isolation boundary.
        try:
            self._record(trip)
        except Exception:
            logger.exception("failed to record request %s", trip.rid)

    def _record(self, trip: _Trip) -> None:
        now = self.clock()
        req = trip.req
        up = trip.pool.config if trip.pool is not None else None
        name = up.name if up is not None else "none"
        if trip.counted:
            self.in_flight -= 1
            self.stats.add("genai_sre_in_flight_requests", (name,), -1)
        error, status = trip.error, trip.status
        if error == "client_disconnect":
            effective_class = "disconnect"
        elif error is not None:
            effective_class = status_class(504 if error == "timeout" else 502)
        else:
            effective_class = status_class(status)
        success = error is None and 200 <= status < 300
        model_label = self.model_label.observe(trip.model, success)
        tenant_raw = req.header(self.tenant_header)
        tenant = self.tenant_label.observe(tenant_raw, success) if tenant_raw else ""
        app_raw = req.header(self.app_header)
        app = self.app_label.observe(app_raw, success) if app_raw else ""
        stats = self.stats
        attribution = (PROBE_TENANT, PROBE_APP) if trip.probe else (tenant or NONE, app or NONE)
        stats.inc("genai_sre_requests", (name, trip.route, model_label, effective_class, *attribution))
        if error and error != "client_disconnect":
            stats.inc("genai_sre_upstream_errors", (name, trip.route, error))
        pre = (trip.t_sent - req.t0) if trip.t_sent is not None else 0.0
        stats.observe("genai_sre_proxy_overhead_seconds", (name, trip.route), pre + trip.post_overhead)
        kind = self.classify(trip.route, name)
        error_type = error or (str(status) if status >= 500 else "")  # OTel: error.type, the status code
        stats.observe(
            "gen_ai_server_request_duration_seconds",
            (kind.operation, kind.provider, model_label, error_type),
            now - req.t0,
        )
        if error != "client_disconnect":  # the client left: the outcome is unknown, no SLI counts it
            ok = succeeded(status, error)
            stats.inc(OUTCOMES, (trip.route, name, tenant, "1" if ok else "0", "1" if trip.probe else "0"))
            if self.failover.watched:
                detail = "" if ok else (error or f"HTTP {status}")
                if trip.mirror:
                    self.failover.on_probe_result(name, ok, detail)
                else:
                    self.failover.on_result(name, ok, detail)
        elif trip.mirror:
            self.failover.on_probe_result(name, False, "client_disconnect")
        if trip.pool is None:
            return
        labels = {"model": model_label}
        if tenant:
            labels["tenant"] = tenant
        if app:
            labels["app"] = app
        captured = bytes(trip.captured)
        offered = self.offer(
            Capture(
                id=trip.capture_id,
                method=req.method.decode("latin-1"),
                path=trip.path,
                route=trip.route,
                upstream=name,
                request_headers=self.capturable.keep(req.headers, self.capturable.request),
                request_body=trip.body[: self.capture_limit],
                request_truncated=len(trip.body) > self.capture_limit,
                status=status,
                response_headers=trip.resp_headers,
                response_body=captured,
                response_truncated=trip.received > len(captured),
                started_at=req.started_at,
                t_received=req.t0,
                t_upstream_sent=trip.t_sent,
                t_headers=trip.t_headers,
                t_first_byte=trip.t_first,
                t_last_byte=trip.t_last if trip.t_last is not None else now,
                chunks=tuple(trip.chunks),
                error=error,  # type: ignore[arg-type]
                probe=trip.probe,
                trace=trip.trace,
                labels=labels,
                classification=kind,
            )
        )
        stats.inc("genai_sre_pipeline_captures", ())
        if not offered:
            stats.inc("genai_sre_pipeline_dropped", ("channel_full",))


class _Trip:
    """One request on its way through: the upstream's response sink and the client's exchange."""

    __slots__ = (
        "fw", "req", "conn", "rid", "capture_id", "probe", "route", "path", "model", "pool", "trace", "head",
        "status", "resp_headers", "captured", "received", "chunks", "error", "t_sent", "t_headers", "t_first",
        "t_last", "post_overhead", "upstream", "task", "counted", "reused", "buffer", "guard_head", "done",
        "body", "mirror", "fallback", "target", "fwd_headers",
    )  # fmt: skip

    def __init__(self, fw: Forwarder, req: Request, conn: ClientConnection | _Discard) -> None:
        self.fw = fw
        self.req = req
        self.conn = conn
        self.rid = ""
        self.capture_id = ""
        self.probe = False
        self.route = "other"
        self.path = "/"
        self.model: str | None = None
        self.pool: UpstreamPool | None = None
        self.trace: TraceIds | None = None
        self.head = b""
        self.status = 0
        self.resp_headers: dict[str, str] = {}
        self.captured = bytearray()
        self.received = 0
        self.chunks: list[tuple[int, float]] = []
        self.error: str | None = None
        self.t_sent: float | None = None
        self.t_headers: float | None = None
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.post_overhead = 0.0
        self.upstream: UpstreamConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.counted = False
        self.reused = False
        self.buffer: bytearray | None = None  # guard mode: the whole answer, held until scored
        self.guard_head: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None
        self.done = False
        self.body = req.body  # as sent upstream (the fallback's model may replace the client's)
        self.mirror = False  # a copy of a client's request sent to a failed-over primary as a probe
        self.fallback: Redirect | None = None  # where to resend on a failure before the first byte
        self.target: Target | None = None
        self.fwd_headers: list[tuple[bytes, bytes]] | None = None

    # -- sending ---------------------------------------------------------------------------------

    async def connect_and_send(self) -> None:
        pool = self.pool
        assert pool is not None
        try:
            upstream, reused = await pool.acquire(pool.config.connect_timeout_s)
        except TimeoutError:
            self._local_failure("connect", 504, f"upstream {pool.config.name!r} did not accept a connection in time")
            return
        except OSError as exc:
            logger.warning("upstream %s unreachable: %s", pool.config.name, type(exc).__name__, extra={"rid": self.rid})
            self._local_failure("connect", 502, f"upstream {pool.config.name!r} unreachable")
            return
        if self.done:  # the client left while we were connecting
            pool._release(upstream)
            return
        self.send(upstream, reused)

    def send(self, upstream: UpstreamConnection, reused: bool) -> None:
        self.upstream = upstream
        self.reused = reused
        total = self.pool.config.total_timeout_s if self.pool is not None else None
        now = self.fw.clock()
        self.t_sent = now
        upstream.send(self.head, self.body, self, self.req.method == b"HEAD", now + total if total else None)

    # -- ResponseSink ---------------------------------------------------------------------------

    def on_response_headers(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], framed: bool) -> None:
        if status >= 500 and self.fallback is not None and self.fw.retry_on_fallback(self, "5xx"):
            return
        clock = self.fw.clock
        t = self.t_headers = clock()
        self.status = status
        out, length, chunked_upstream = response_headers_for_client(headers)
        if not any(n.lower() == b"x-request-id" for n, _ in out):  # the upstream's own id wins
            out.append((b"x-request-id", self.rid.encode()))
        out.append((b"x-genai-sre-request-id", self.rid.encode()))
        allowed = self.fw.capturable
        self.resp_headers = allowed.keep(headers, allowed.response)
        no_body = self.req.method == b"HEAD" or status in (204, 304)
        guard = self.fw.guard
        if (
            guard is not None
            and not self.mirror
            and status == 200
            and guard.threshold(self.route) is not None
            and length is not None
            and length <= self.fw.capture_limit
            and not self.resp_headers.get("content-type", "").startswith("text/event-stream")
        ):
            self.buffer = bytearray()  # guard mode: answered once scored (see _guarded)
            self.guard_head = (status, reason, out)
            return
        if length is not None:
            out.append((b"content-length", b"%d" % length))
        http10 = self.req.version == "1.0"
        chunked = not no_body and length is None and not http10
        self.conn.write_head(status, reason, out, chunked=chunked, close=(length is None and http10 and not no_body))
        self.post_overhead += clock() - t

    def on_response_body(self, data: bytes) -> None:
        clock = self.fw.clock
        t = clock()
        if self.t_first is None:
            self.t_first = t
        self.received += len(data)
        if len(self.chunks) < MAX_CHUNK_TIMES:
            self.chunks.append((self.received, t))
        room = self.fw.capture_limit - len(self.captured)
        if room > 0:
            self.captured += data[:room] if len(data) > room else data
        if self.buffer is not None:
            self.buffer += data
            return
        self.conn.write_body(data)
        if self.received == len(data):
            self.post_overhead += clock() - t  # added time to the first byte

    def on_response_end(self) -> None:
        self.t_last = self.fw.clock()
        if self.buffer is not None:
            self.task = asyncio.get_running_loop().create_task(self._guarded())
            return
        self._done()
        self.conn.finish()

    def on_response_error(self, error: str) -> None:
        self.t_last = self.fw.clock()
        if self.done:
            return
        if self.t_headers is None or self.buffer is not None:
            if error == "timeout":
                self._local_failure("timeout", 504, f"upstream {self._name()!r} timed out")
            elif error == "cut" and self.reused and self.received == 0 and self.req.method in _REPLAYABLE:
                self._retry()
            elif error == "bad_response":
                self._local_failure("bad_response", 502, f"upstream {self._name()!r} sent an invalid HTTP response")
            else:
                self._local_failure("cut", 502, f"upstream {self._name()!r} closed the connection")
            return
        self.error = error
        self._done()
        self.conn.abort()  # a response that broke off must not look complete

    # -- Exchange (from the client connection) --------------------------------------------------

    def client_gone(self) -> None:
        if self.done:
            return
        self.error = "client_disconnect"
        if self.upstream is not None:
            self.upstream.abandon()  # closing the connection is how the upstream learns to stop
        if self.task is not None:
            self.task.cancel()
        self._done()

    def pause_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.pause()

    def resume_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.resume()

    # -- helpers ---------------------------------------------------------------------------------

    def _name(self) -> str:
        return self.pool.config.name if self.pool is not None else "none"

    def _retry(self) -> None:
        """A pooled connection the upstream had closed: send a replayable request again on a new one."""
        self.reused = False
        self.upstream = None
        self.task = asyncio.get_running_loop().create_task(self.connect_and_send())

    def _local_failure(self, error: str, status: int, message: str) -> None:
        if self.done or (self.fallback is not None and self.fw.retry_on_fallback(self, error)):
            return
        self.error = error
        self._done()
        self.conn.send_error(status, message, _CODES.get(error, "upstream_error"), self.rid)

    def _done(self) -> None:
        if not self.done:
            self.done = True
            asyncio.get_running_loop().call_soon(self.fw.finish, self)

    async def _guarded(self) -> None:
        """Opt-in guard mode: the client waits for the risk score of this answer."""
        guard = self.fw.guard
        assert guard is not None and self.buffer is not None and self.pool is not None
        assert self.guard_head is not None
        status, reason, out = self.guard_head
        data = bytes(self.buffer)
        is_anthropic = self.fw.classify(self.route, self.pool.config.name).dialect == "anthropic"
        verdict = await guard.check(self.route, self.req.body, data, is_anthropic)
        if self.done:
            return
        if verdict is not None:
            out.append((b"x-genai-sre-hallucination-risk", f"{verdict.risk:.3f}".encode()))
            if verdict.refused:
                out.append((b"x-genai-sre-guard", b"refused"))
            data = verdict.body
        out.append((b"content-length", b"%d" % len(data)))
        self.conn.write_head(status, reason, out, chunked=False, close=False)
        self.conn.write_body(data)
        self._done()
        self.conn.finish()


class _Discard:
    """The client side of a mirrored probe: its answer is counted and scored, then dropped."""

    def write_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], chunked: bool,
                   close: bool) -> None:
        pass

    def write_body(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def send_error(self, status: int, message: str, code: str, rid: str | None = None, close: bool = False) -> None:
        pass


_DISCARD = _Discard()

_CODES = {
    "timeout": "upstream_timeout",
    "connect": "upstream_unreachable",
    "cut": "upstream_cut",
    "bad_response": "upstream_bad_response",
}

def _trace(traceparent: str | None, tracestate: str | None) -> TraceIds:
    parent = None
    sampled = True
    trace_id = None
    if traceparent:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
            trace_id, parent = m.group(1), m.group(2)
            sampled = bool(int(m.group(3), 16) & 1)
    ids = f"{_random.getrandbits(256):064x}"  # W3C ids need randomness, not secrecy
    return TraceIds(
        trace_id=trace_id or ids[:32],
        server_span_id=ids[32:48],
        upstream_span_id=ids[48:64],
        parent_span_id=parent,
        sampled=sampled,
        tracestate=tracestate if parent else None,
    )
