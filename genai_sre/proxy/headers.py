"""Which headers are forwarded, and which are kept.

Everything the client sends is forwarded except the hop-by-hop headers (RFC
9110 §7.6.1, plus those its `Connection` header names), the framing headers
the sidecar recomputes and the sidecar's own probe marker. Credentials
(`Authorization`, `api-key`, `x-api-key`, cookies, ...) are forwarded untouched.

What is *kept* in a `Capture` is chosen by an allow-list (`Capturable`): the
headers later stages read (content type and encoding, API versions, request
ids, the configured tenant, app, group, session, conversation and model-version
headers). A header that is not on it is never stored, logged or exported, so
a credential under a name nobody anticipated (`apikey`, `helicone-auth`,
`x-authorization`) cannot leak.
"""

from __future__ import annotations

from collections.abc import Iterable

from genai_sre.config import LabelsConfig

__all__ = ["Capturable", "request_headers_for_upstream", "response_headers_for_client"]

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 connection-specific headers, plus framing headers the proxy recomputes.
HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
    )
)
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect", b"traceparent"}  # traceparent: ours replaces it
_RESPONSE_DROP = HOP_BY_HOP | {b"content-length"}

# Headers later stages read; values are never credentials.
REQUEST_CAPTURE = frozenset(
    (
        b"content-type",
        b"content-encoding",
        b"accept",
        b"user-agent",
        b"x-request-id",
        b"traceparent",
        b"openai-beta",
        b"anthropic-version",
        b"anthropic-beta",
        b"api-version",
    )
)
RESPONSE_CAPTURE = frozenset(
    (
        b"content-type",
        b"content-encoding",
        b"x-request-id",
        b"request-id",
        b"openai-model",
        b"openai-processing-ms",
        b"openai-version",
        b"retry-after",
        b"x-ratelimit-limit-requests",
        b"x-ratelimit-remaining-requests",
        b"x-ratelimit-limit-tokens",
        b"x-ratelimit-remaining-tokens",
    )
)


def _connection_tokens(headers: Headers) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def request_headers_for_upstream(headers: Headers, drop_also: bytes) -> Headers:
    """The client's headers as sent upstream: hop-by-hop, framing and the probe marker removed."""
    drop = _REQUEST_DROP | {drop_also}
    if any(n.lower() == b"connection" for n, _ in headers):
        drop = drop | _connection_tokens(headers)
    return [(n, v) for n, v in headers if n.lower() not in drop]


def response_headers_for_client(headers: Headers) -> tuple[Headers, int | None, bool]:
    """The upstream's headers as sent to the client, its Content-Length (if it framed the body so) and
    whether it used chunked encoding. The proxy frames the body itself from these."""
    length: int | None = None
    chunked = False
    drop = _RESPONSE_DROP
    if any(n.lower() == b"connection" for n, _ in headers):
        drop = drop | _connection_tokens(headers)
    out: Headers = []
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            if value.strip().isdigit():
                length = int(value)
        elif lname == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
        if lname not in drop:
            out.append((name, value))
    return out, (None if chunked else length), chunked


class Capturable:
    """The allow-list of headers a `Capture` keeps (names lower-cased, values as text)."""

    def __init__(self, labels: LabelsConfig, also: Iterable[str] = ()) -> None:
        configured = {
            labels.tenant_header,
            labels.app_header,
            labels.model_version_header,
            labels.session_header,
            labels.conversation_header,
            *also,
        }
        configured |= set(labels.group_headers.values())
        extra = frozenset(h.lower().encode("latin-1") for h in configured if h)
        self.request = REQUEST_CAPTURE | extra
        self.response = RESPONSE_CAPTURE | frozenset((labels.model_version_header.lower().encode("latin-1"),))

    @staticmethod
    def keep(headers: Headers, allowed: frozenset[bytes]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in headers:
            lname = name.lower()
            if lname in allowed:
                out[lname.decode("latin-1")] = value.decode("latin-1")[:1024]
        return out
