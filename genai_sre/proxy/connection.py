"""One client connection on the proxy port: HTTP/1.1 parsed with httptools, bounded in size and time.

What a client can send is bounded before anything is forwarded: the request
line (`max_target_bytes`), the header block (`max_header_bytes`, 100 fields),
the body (`max_body_bytes`), the time to send the headers once the first byte
arrived (`header_timeout_s`: a connection sending a byte every few seconds is
closed), and the silence between body reads (`body_timeout_s`).
`Content-Length` together with `Transfer-Encoding`, a repeated
`Content-Length`, `CONNECT` and upgrades are refused by the parser or here.
Requests are handled one at a time per connection, in order; a client that
pipelines is simply read no further until its earlier answers are written.

A request leaves this module as a complete `Request` (the body is in memory,
bounded); the response comes back through `write_head` / `write_body` /
`finish` (or `abort`, which cuts the connection so a broken stream never looks
complete). When the client goes away mid-request, the forwarder is told at
once (`Exchange.client_gone`), so the upstream stops generating.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

import httptools

if TYPE_CHECKING:
    from genai_sre.proxy.listener import ProxyServer

__all__ = ["ClientConnection", "Exchange", "Request", "error_body"]

Headers = list[tuple[bytes, bytes]]

MAX_FIELDS = 100
_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def error_body(message: str, code: str, type_: str = "upstream_error") -> bytes:
    """An OpenAI-style JSON error body."""
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


class Request:
    """A parsed request (mutable while it is being read; handed on once complete)."""

    __slots__ = ("method", "target", "version", "headers", "lookup", "body", "keep_alive", "t0", "started_at")

    def __init__(self, t0: float, started_at: float) -> None:
        self.method = b""
        self.target = b""
        self.version = "1.1"
        self.headers: Headers = []
        self.lookup: dict[bytes, bytes] = {}  # lower-cased name -> last value
        self.body = b""
        self.keep_alive = True
        self.t0 = t0
        self.started_at = started_at

    def header(self, name: bytes) -> str | None:
        """The last value of a header (`name` lower-case), as text."""
        value = self.lookup.get(name)
        return value.decode("latin-1") if value is not None else None


class Exchange(Protocol):
    """What the connection tells the request being answered."""

    def client_gone(self) -> None: ...

    def pause_upstream(self) -> None: ...

    def resume_upstream(self) -> None: ...


class _Refuse(Exception):
    def __init__(self, status: int, code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason


class ClientConnection(asyncio.Protocol):
    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None  # being read
        self.queue: deque[Request] = deque()  # read, waiting for an earlier one to be answered
        self.exchange: Exchange | None = None  # being answered
        self.deadline = 0.0
        self.deadline_reason = "idle"
        self.closed = False
        self._header_bytes = 0
        self._body = bytearray()
        self._chunked = False  # the response to the client is chunked
        self._close_after = False
        self._doomed = False  # close once the response being written is out
        self._dispatching = False
        self._paused_reading = False
        self._writing_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.server.connections.add(self)
        self._idle()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except _Refuse as exc:
            self._refuse(exc)
        except httptools.HttpParserUpgrade:
            method = self.parser.get_method()
            if method == b"CONNECT":
                self._refuse(_Refuse(405, "method_not_allowed", "CONNECT is not accepted: this is not a forward proxy",
                                     "connect"))
            else:
                self._refuse(_Refuse(400, "upgrade_not_supported", "protocol upgrades are not forwarded", "upgrade"))
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refuse):  # raised by one of our callbacks
                self._refuse(exc.__context__)
            else:
                self._refuse(
                    _Refuse(400, "bad_request", f"malformed HTTP request: {_parser_reason(exc)}", "malformed")
                )

    def eof_received(self) -> bool | None:
        self._gone()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.exchange is not None:
            self.exchange.pause_upstream()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.exchange is not None:
            self.exchange.resume_upstream()

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        now = time.monotonic()
        self.current = Request(now, self.server.wall())
        self._header_bytes = 0
        self._body = bytearray()
        if self.exchange is None and not self.queue:
            self.deadline = now + self.limits.header_timeout_s
            self.deadline_reason = "header_timeout"

    def on_url(self, url: bytes) -> None:
        req = self.current
        assert req is not None
        req.target += url
        if len(req.target) > self.limits.max_target_bytes:
            raise _Refuse(414, "request_target_too_long", "the request target is too long", "target_too_long")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.current
        assert req is not None
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes or len(req.headers) >= MAX_FIELDS:
            raise _Refuse(431, "headers_too_large", "the request's header block is too large", "headers_too_large")
        req.headers.append((name, value))
        req.lookup[name.lower()] = value

    def on_headers_complete(self) -> None:
        req = self.current
        assert req is not None
        req.method = self.parser.get_method()
        if req.method == b"CONNECT":
            raise _Refuse(405, "method_not_allowed", "CONNECT is not accepted: this is not a forward proxy", "connect")
        if self.parser.should_upgrade():
            raise _Refuse(400, "upgrade_not_supported", "protocol upgrades are not forwarded", "upgrade")
        req.version = self.parser.get_http_version()
        req.keep_alive = self.parser.should_keep_alive()
        declared = req.lookup.get(b"content-length")
        if declared is not None and int(declared.strip() or b"0") > self.limits.max_body_bytes:
            raise _Refuse(413, "request_too_large", "request body exceeds the sidecar's limit", "body_too_large")
        if self.exchange is None and not self.queue:
            self.deadline = time.monotonic() + self.limits.body_timeout_s
            self.deadline_reason = "body_timeout"
        expect = req.lookup.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the body is within the limit: send it

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self.limits.max_body_bytes:
            raise _Refuse(413, "request_too_large", "request body exceeds the sidecar's limit", "body_too_large")
        if self.exchange is None and not self.queue:
            self.deadline = time.monotonic() + self.limits.body_timeout_s

    def on_message_complete(self) -> None:
        req = self.current
        assert req is not None
        self.current = None
        req.body = bytes(self._body)
        self._body = bytearray()
        self.queue.append(req)
        if self.exchange is None:
            self._next()
        elif not self._paused_reading and self.transport is not None:
            self._paused_reading = True  # a pipelining client: read on once the earlier answers are out
            self.transport.pause_reading()

    # -- answering ------------------------------------------------------------------------------

    def _next(self) -> None:
        if self._dispatching:
            return  # a request answered at once: the loop below goes on
        self._dispatching = True
        try:
            while self.queue and self.exchange is None and not self.closed:
                req = self.queue.popleft()
                if not req.keep_alive:  # `Connection: close` or HTTP/1.0: this is the last answer
                    self._doomed = True
                self.deadline = float("inf")
                self.deadline_reason = "busy"
                self.server.handle(req, self)  # sets `self.exchange` until it calls finish() or abort()
        finally:
            self._dispatching = False
        if self.exchange is None and not self.closed:
            if self._paused_reading and self.transport is not None:
                self._paused_reading = False
                self.transport.resume_reading()
            if self.current is None:
                self._idle()

    def write_head(self, status: int, reason: bytes, headers: Headers, chunked: bool, close: bool) -> None:
        """Status line and headers. `chunked`: the body that follows is framed here; `close`: end after it."""
        transport = self.transport
        if transport is None or self.closed:
            return
        self._chunked = chunked
        self._close_after = close or self._doomed or self.server.closing
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason or _REASONS.get(status, b"Unknown"))]
        for name, value in headers:
            parts.append(b"%s: %s\r\n" % (name, value))
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        if self._close_after:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        transport.write(b"".join(parts))

    def write_body(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self.closed or not data:
            return
        if self._chunked:
            transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            transport.write(data)

    def finish(self) -> None:
        """The response is complete: go on with the next request, or close."""
        transport = self.transport
        self.exchange = None
        if transport is None or self.closed:
            return
        if self._chunked:
            transport.write(b"0\r\n\r\n")
            self._chunked = False
        if self._close_after or self._doomed or self.server.closing:
            self.closed = True
            self.server.connections.discard(self)
            transport.close()
            return
        self._next()

    def abort(self) -> None:
        """Cut the connection: a response that broke off must not look complete."""
        self.exchange = None
        self.closed = True
        self.server.connections.discard(self)
        if self.transport is not None:
            self.transport.abort()

    def send_error(self, status: int, message: str, code: str, rid: str | None = None, close: bool = False) -> None:
        """A response of the sidecar's own (502, 504, 413, ...): OpenAI-style JSON."""
        type_ = "invalid_request_error" if status < 500 else "upstream_error"
        body = error_body(message, code, type_)
        headers: Headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if rid is not None:
            rid_b = rid.encode()
            headers += [(b"x-request-id", rid_b), (b"x-genai-sre-request-id", rid_b)]
        self.write_head(status, b"", headers, chunked=False, close=close)
        self.write_body(body)
        self.finish()

    # -- housekeeping ---------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Called by the server's sweep: close a connection whose deadline passed."""
        if now < self.deadline or self.closed:
            return
        reason = self.deadline_reason
        if reason == "idle":
            self._close()
            return
        self.server.refused(reason, 408, self.current.target if self.current is not None else b"")
        self.send_error(408, "the client was too slow sending its request", reason, close=True)
        self._close()

    def close_if_idle(self) -> bool:
        if self.exchange is None and not self.queue and self.current is None:
            self._close()
            return True
        return False

    @property
    def busy(self) -> bool:
        return self.exchange is not None

    def _idle(self) -> None:
        self.deadline = time.monotonic() + self.limits.keepalive_timeout_s
        self.deadline_reason = "idle"

    def _refuse(self, exc: _Refuse) -> None:
        self.server.refused(exc.reason, exc.status, self.current.target if self.current is not None else b"")
        self.current = None
        if self.exchange is not None:  # a later pipelined request was bad: answer the earlier one, then close
            self._doomed = True
            self.queue.clear()
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.send_error(exc.status, exc.message, exc.code, close=True)
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.connections.discard(self)
            if self.transport is not None:
                self.transport.close()

    def _gone(self) -> None:
        was_closed = self.closed
        self.closed = True
        self.server.connections.discard(self)
        exchange, self.exchange = self.exchange, None
        self.queue.clear()
        if exchange is not None and not was_closed:
            exchange.client_gone()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _parser_reason(exc: Exception) -> str:
    """The parser's reason, without echoing any of the request (which may hold a query string or a key)."""
    text = str(exc)
    return text if len(text) < 80 and "\n" not in text else "invalid syntax"
