"""Which headers are forwarded, and which never leave the hot path.

Credentials (`Authorization`, `api-key`, `x-api-key`, cookies, ...) are
forwarded to the upstream untouched but are never stored, logged or exported:
`capturable()` is the only way headers reach a `Capture`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["SECRET_HEADERS", "capturable", "request_headers_for_upstream", "response_headers_for_client"]

# RFC 9110 §7.6.1 connection-specific headers, plus framing headers the server recomputes.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Connection",
    )
)

SECRET_HEADERS = frozenset(
    (
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "set-cookie",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
        "ocp-apim-subscription-key",
    )
)

_REQUEST_DROP = HOP_BY_HOP | {"host", "content-length", "expect"}  # the sidecar answers 100-continue itself
_RESPONSE_DROP = HOP_BY_HOP | {"content-length"}


def _connection_tokens(headers: Mapping[str, str]) -> frozenset[str]:
    value = headers.get("Connection")
    if not value:
        return frozenset()
    return frozenset(t.strip().lower() for t in value.split(","))


def request_headers_for_upstream(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    drop = _REQUEST_DROP | _connection_tokens(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def response_headers_for_client(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    drop = _RESPONSE_DROP | _connection_tokens(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def capturable(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers safe to keep in a capture: secrets and cookies removed, names lower-cased."""
    out: dict[str, str] = {}
    for k, v in headers:
        lk = k.lower()
        if lk in SECRET_HEADERS or "token" in lk or "secret" in lk or lk.endswith("-key"):
            continue
        out[lk] = v
    return out
