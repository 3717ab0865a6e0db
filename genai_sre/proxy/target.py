"""The request target: only origin-form paths are forwarded, and never outside the upstream's base path.

A reverse proxy that builds its upstream URL by concatenating strings can be
made to connect anywhere (`CONNECT @evil:80`, `GET http://evil/`) or to escape
its base path (`/../other-tenant/`). Here the upstream's scheme, host and port
come only from the config; the client contributes a path that must start with
`/` and may not contain dot-segments, raw or percent-encoded (once or twice),
nor backslashes, NUL or control characters. The query string is passed on as
sent, and is never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["BadTarget", "Target", "parse_target"]

_SAFE = re.compile(rb"^/[A-Za-z0-9\-_~!$&'()*+,;=:@/]*$")  # no '.', '%', '\\' or controls: nothing to check
_DOT_SEGMENT = re.compile(rb"(^|/)\.\.?(/|$)")


class BadTarget(Exception):
    """A request target the sidecar refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Target:
    path: bytes  # origin-form path, as sent (still percent-encoded), starting with '/'
    query: bytes  # with its leading '?', or b""

    @property
    def path_str(self) -> str:
        return self.path.decode("latin-1")


def parse_target(raw: bytes) -> Target:
    """Split and check an HTTP/1.1 request target; raise `BadTarget` for anything but a safe origin-form."""
    if not raw.startswith(b"/"):
        if raw == b"*":
            raise BadTarget(400, "bad_request_target", "asterisk-form request targets are not accepted")
        if b"://" in raw[:16]:
            raise BadTarget(
                400, "bad_request_target", "absolute-form request targets are not accepted: this is not a forward proxy"
            )
        raise BadTarget(400, "bad_request_target", "the request target must be a path starting with '/'")
    if raw.startswith(b"//"):
        raise BadTarget(400, "bad_request_target", "the request target must not start with '//'")
    path, sep, query = raw.partition(b"?")
    if b"#" in path:
        path = path.split(b"#", 1)[0]
    if not _SAFE.match(path):
        _check_path(path)
    return Target(path, sep + query if sep else b"")


def _check_path(path: bytes) -> None:
    if any(c < 0x21 or c == 0x7F for c in path):
        raise BadTarget(400, "bad_request_target", "the request path contains control characters or spaces")
    once = path
    for _ in range(3):  # as sent, decoded once, decoded twice
        probe = once.replace(b"\\", b"/")
        if _DOT_SEGMENT.search(probe):
            raise BadTarget(400, "bad_request_target", "dot-segments ('.', '..') are not allowed in the request path")
        if b"\x00" in once:
            raise BadTarget(400, "bad_request_target", "the request path contains NUL")
        if b"\\" in once:
            raise BadTarget(400, "bad_request_target", "backslashes are not allowed in the request path")
        if b"%" not in once:
            return
        once = unquote_to_bytes(once)
