"""The probe mark: how the sidecar's own requests (counterfactual probes, self-consistency re-asks) are told apart.

Probe traffic is left out of user SLIs. A marker a client could send would let
it hide traffic from an SLO, so the mark is a secret of the running sidecar:
`probe_token()` is random per process tree (generated once, handed to child
processes through `GENAI_SRE_PROBE_TOKEN`), the sidecar's own probes send it in
`x-genai-sre-probe` (`probe_headers()`), and the proxy counts a request as a
probe only when the header carries exactly that token. The header is always
removed before a request is forwarded upstream.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["PROBE_HEADER", "TOKEN_ENV", "probe_headers", "probe_token"]

PROBE_HEADER = "x-genai-sre-probe"
TOKEN_ENV = "GENAI_SRE_PROBE_TOKEN"


def probe_token() -> str:
    token = os.environ.get(TOKEN_ENV)
    if not token or len(token) < 32:
        token = secrets.token_hex(16)
        os.environ[TOKEN_ENV] = token
    return token


def probe_headers() -> dict[str, str]:
    """Headers that mark a request as the sidecar's own probe when it passes through the proxy."""
    return {PROBE_HEADER: probe_token()}
