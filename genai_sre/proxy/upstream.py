"""Connections to one upstream: a keep-alive pool of raw HTTP/1.1 connections (httptools), TLS, HTTP(S) proxies.

The forwarding path never waits on DNS: `Resolver` looks the upstream's host
up at start and every `refresh_s` in the background, and connections are made
to the cached addresses (TLS still verifies the configured host name). Only
when no address has ever been resolved does a request wait for a lookup.

Each `UpstreamConnection` hands the response to a `ResponseSink` as it
arrives (headers, each body piece, the end, or an error), from the protocol's
own callbacks, so a byte reaches the client without a task switch. Idle
connections that the upstream closes leave the pool at once; a connection is
reused only after a complete response that allows it, and never after a
client went away mid-response (closing it is how the upstream learns to stop
generating).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import unquote, urlsplit

import httptools

from genai_sre.config import UpstreamConfig

__all__ = ["Endpoint", "ResponseSink", "UpstreamConnection", "UpstreamPool", "env_proxy"]

logger = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


class ResponseSink(Protocol):
    """Receives one upstream response as it arrives."""

    def on_response_headers(self, status: int, reason: bytes, headers: Headers, framed: bool) -> None: ...

    def on_response_body(self, data: bytes) -> None: ...

    def on_response_end(self) -> None: ...

    def on_response_error(self, error: str) -> None: ...


def env_proxy(url: str, host: str) -> str | None:
    """The HTTP(S)_PROXY that applies to an upstream, honouring NO_PROXY; None for direct."""
    scheme = url.split("://", 1)[0]
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def _ssl_context(config: UpstreamConfig) -> ssl.SSLContext | None:
    if not config.url.startswith("https"):
        return None
    if not config.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else ssl.create_default_context()


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    auth: bytes | None  # the Proxy-Authorization value, from the proxy URL's user info


@dataclass(frozen=True)
class Endpoint:
    """Where an upstream is, from the config only: nothing a client sends can change it."""

    name: str
    scheme: str
    host: str
    port: int
    base_path: bytes  # without a trailing '/'
    host_header: bytes
    authority: bytes  # host:port, for CONNECT
    ssl: ssl.SSLContext | None
    proxy: _Proxy | None

    @classmethod
    def of(cls, config: UpstreamConfig) -> Endpoint:
        parts = urlsplit(config.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = port == (443 if parts.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else (host if host.isascii() else host.encode("idna").decode("ascii"))
        proxy = None
        proxy_url = env_proxy(config.url, host)
        if proxy_url:
            p = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
            auth = None
            if p.username is not None:
                cred = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                auth = b"Basic " + base64.b64encode(cred)
            proxy = _Proxy(p.hostname or "", p.port or 80, auth)
        return cls(
            name=config.name,
            scheme=parts.scheme,
            host=host,
            port=port,
            base_path=parts.path.rstrip("/").encode("latin-1"),
            host_header=(shown if default_port else f"{shown}:{port}").encode("ascii"),
            authority=f"{shown}:{port}".encode("ascii"),
            ssl=_ssl_context(config),
            proxy=proxy,
        )

    def request_target(self, path: bytes, query: bytes) -> bytes:
        """The request target sent upstream: the configured base path plus the client's checked path."""
        target = self.base_path + path + query
        if self.proxy is not None and self.ssl is None:  # plain HTTP through a proxy: absolute-form
            return f"http://{self.host_header.decode()}".encode() + target
        return target


class Resolver:
    """Addresses of one host, looked up off the request path and refreshed in the background."""

    def __init__(self, host: str, port: int, refresh_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.refresh_s = refresh_s
        self.addresses: list[tuple[int, str]] = []  # (family, address)
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def lookup(self) -> list[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self.addresses:
                raise
            return self.addresses  # a DNS blip keeps the last good answer
        found = []
        for family, _, _, _, sockaddr in infos:
            entry = (int(family), str(sockaddr[0]))
            if entry not in found:
                found.append(entry)
        self.addresses = found
        self.last_error = None
        return found

    async def addresses_now(self) -> list[tuple[int, str]]:
        return self.addresses or await self.lookup()

    def start(self) -> None:
        async def refresh() -> None:
            while True:
                try:
                    await self.lookup()
                except OSError:
                    pass  # logged by whoever needs an address; retried on the next turn
                await asyncio.sleep(self.refresh_s if self.addresses else 1.0)

        self._task = asyncio.get_running_loop().create_task(refresh(), name=f"resolve {self.host}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to the upstream, parsing responses with httptools."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.closed = False
        self.requests = 0
        self.idle_since = 0.0
        self.activity = 0.0  # monotonic time of the last byte sent or received on the current request
        self.deadline: float | None = None  # monotonic: the whole request must be done by then
        self.keep_alive_s: float | None = None  # the upstream's `Keep-Alive: timeout=N`
        self._head_only = False
        self._status = 0
        self._reason = b""
        self._headers: Headers = []
        self._framed = True
        self._got_headers = False
        self._reusable = False
        self._tunnel: asyncio.Future[bytes] | None = None
        self._tunnel_buf = b""

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_buf += data
            if b"\r\n\r\n" in self._tunnel_buf and not self._tunnel.done():
                self._tunnel.set_result(self._tunnel_buf)
            return
        if self.sink is None:  # bytes nobody asked for: this connection can no longer be trusted
            self.close()
            return
        self.activity = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("bad_response")
        except httptools.HttpParserError:
            self._fail("bad_response")

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if self._tunnel is not None and not self._tunnel.done():
            self._tunnel.set_exception(ConnectionError("proxy closed the connection"))
        sink = self.sink
        if sink is None:
            return
        if self._got_headers and not self._framed and exc is None:
            self.sink = None  # a body delimited by the end of the connection: this is its end
            sink.on_response_end()
        else:
            self._fail("cut")

    def pause_writing(self) -> None:  # request bodies are bounded and already in memory
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._reason = b""
        self._framed = False

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-length" or (lname == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True
        elif lname == b"keep-alive":
            for part in value.split(b","):
                k, _, v = part.strip().partition(b"=")
                if k.lower() == b"timeout" and v.strip().isdigit():
                    self.keep_alive_s = float(v.strip())
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # informational (100 Continue, 103 Early Hints): not forwarded, the real answer follows
        self._status = status
        self._got_headers = True
        self._reusable = self.parser.should_keep_alive()
        if status in (204, 304):
            self._framed = True
        sink = self.sink
        if sink is not None:
            sink.on_response_headers(status, self._reason, self._headers, self._framed or self._head_only)
        if self._head_only and self.sink is not None:  # no body follows a HEAD answer
            self._reusable = False
            self._complete()

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.on_response_body(body)

    def on_message_complete(self) -> None:
        if self._got_headers and self.sink is not None:
            self._complete()

    # -- used by the pool and the forwarder -----------------------------------------------------

    def send(self, head: bytes, body: bytes, sink: ResponseSink, head_only: bool, deadline: float | None) -> None:
        assert self.transport is not None
        self.sink = sink
        self.requests += 1
        self._head_only = head_only
        self._got_headers = False
        self._reusable = False
        self.deadline = deadline
        self.activity = time.monotonic()
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)

    def pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abandon(self) -> None:
        """The client went away: stop this response and close, so the upstream stops generating."""
        self.sink = None
        self.close(abort=True)

    def timed_out(self) -> None:
        self._fail("timeout")

    def close(self, abort: bool = False) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        self.pool._forget(self)

    def _complete(self) -> None:
        sink, self.sink = self.sink, None
        self.deadline = None
        if self._reusable and not self.closed:
            self.pool._release(self)
        else:
            self.close()
        if sink is not None:
            sink.on_response_end()

    def _fail(self, error: str) -> None:
        sink, self.sink = self.sink, None
        self.close(abort=True)
        if sink is not None:
            sink.on_response_error(error)

    async def open_tunnel(self, target: bytes, auth: bytes | None, timeout: float) -> None:
        """CONNECT through an HTTP proxy; on success the connection carries TLS to the upstream."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._tunnel = loop.create_future()
        lines = [b"CONNECT " + target + b" HTTP/1.1", b"Host: " + target]
        if auth:
            lines.append(b"Proxy-Authorization: " + auth)
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        try:
            reply = await asyncio.wait_for(self._tunnel, timeout)
        finally:
            self._tunnel = None
        status_line = reply.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or status_line[1] != b"200":
            raise ConnectionError(f"proxy refused CONNECT: {b' '.join(status_line[1:3]).decode('latin-1')}")


class UpstreamPool:
    """Keep-alive connections to one upstream, at most `max_connections` at a time."""

    def __init__(
        self,
        config: UpstreamConfig,
        idle_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.endpoint = Endpoint.of(config)
        dial_host = self.endpoint.proxy.host if self.endpoint.proxy else self.endpoint.host
        dial_port = self.endpoint.proxy.port if self.endpoint.proxy else self.endpoint.port
        self.resolver = Resolver(dial_host, dial_port)
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.idle: deque[UpstreamConnection] = deque()
        self.active: set[UpstreamConnection] = set()
        self.opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.active) + self.opening

    def start(self) -> None:
        self.resolver.start()

    def take_idle(self) -> UpstreamConnection | None:
        """An idle keep-alive connection, without waiting, or None."""
        now = self.clock()
        while self.idle:
            conn = self.idle.pop()  # the most recently used: the least likely to have been closed
            limit = min(self.idle_timeout_s, (conn.keep_alive_s or 1e9) - 1.0)
            if conn.closed or now - conn.idle_since > limit:
                conn.close()
                continue
            self.active.add(conn)
            return conn
        return None

    async def acquire(self, timeout: float) -> tuple[UpstreamConnection, bool]:
        """A connection for one request, and whether it was reused; raises OSError/TimeoutError."""
        pooled = self.take_idle()
        if pooled is not None:
            return pooled, True
        while self.size >= self.config.max_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            pooled = self.take_idle()
            if pooled is not None:
                return pooled, True
        self.opening += 1
        try:
            conn = await asyncio.wait_for(self._open(), timeout)
        finally:
            self.opening -= 1
        self.active.add(conn)
        return conn, False

    async def _open(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        last: OSError | None = None
        for family, address in await self.resolver.addresses_now():
            try:
                if ep.proxy is not None and ep.ssl is not None:
                    transport, conn = await loop.create_connection(
                        lambda: UpstreamConnection(self), address, self.resolver.port, family=family
                    )
                    await conn.open_tunnel(ep.authority, ep.proxy.auth, self.config.connect_timeout_s)
                    tls = await loop.start_tls(transport, conn, ep.ssl, server_hostname=ep.host)
                    assert tls is not None
                    conn.transport = tls  # type: ignore[assignment]
                else:
                    _, conn = await loop.create_connection(
                        lambda: UpstreamConnection(self),
                        address,
                        self.resolver.port,
                        family=family,
                        ssl=ep.ssl,
                        server_hostname=ep.host if ep.ssl is not None else None,
                    )
                sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return conn
            except (OSError, ssl.SSLError) as exc:
                last = exc if isinstance(exc, OSError) else OSError(str(exc))
        raise last or OSError(f"no address for {self.resolver.host!r}")

    def _release(self, conn: UpstreamConnection) -> None:
        self.active.discard(conn)
        conn.idle_since = self.clock()
        self.idle.append(conn)
        self._wake()

    def _forget(self, conn: UpstreamConnection) -> None:
        self.active.discard(conn)
        try:
            self.idle.remove(conn)
        except ValueError:
            pass
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def sweep(self, now: float) -> None:
        """Time out silent or overdue requests; close connections idle for too long."""
        read_timeout = self.config.read_timeout_s
        for conn in list(self.active):
            if conn.sink is None:
                continue
            if now - conn.activity > read_timeout or (conn.deadline is not None and now > conn.deadline):
                conn.timed_out()
        while self.idle and now - self.idle[0].idle_since > self.idle_timeout_s:
            self.idle.popleft().close()

    async def aclose(self) -> None:
        await self.resolver.aclose()
        for conn in list(self.idle) + list(self.active):
            conn.close()
