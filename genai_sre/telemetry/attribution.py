"""Who an exchange is for: bounded `tenant` and `app` labels, and the end user as a keyed hash.

`AttributionLabels(labels_config)` maps request headers (`labels.tenant_header`,
`labels.app_header`) to label values that stay bounded (`BoundedLabel`): a
value on the allow-list (`labels.tenants`, `labels.apps`) is kept; without an
allow-list at most `labels.max_values` values hold a label of their own, earned
by successful requests; anything else becomes `other`, and a request without
the header `none`. It is O(1) per request. The proxy chooses the same labels
itself and hands them over in `Capture.labels`; `attribution_of()` reads them.

`UserId` turns the end user a client names (OpenAI `user` /
`safety_identifier`, Anthropic `metadata.user_id`) into the span attribute
`user.id`: an HMAC-SHA256 of the value keyed with the secret in
`telemetry.user_id_key_env`, or nothing when `telemetry.user_id` is `omit` or
that variable is unset (an unkeyed hash of an e-mail address is reversed by
hashing guesses, so no key means no `user.id`; a warning says so at start).
User ids never become metric labels.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping

from genai_sre.config import LabelsConfig, TelemetryConfig
from genai_sre.events import Exchange
from genai_sre.proxy.routes import BoundedLabel

__all__ = ["NONE", "PROBE_APP", "PROBE_TENANT", "AttributionLabels", "UserId", "attribution_of"]

logger = logging.getLogger(__name__)

NONE = "none"
# the sidecar's own requests (counterfactual probes, self-consistency re-asks) are its own spending
PROBE_TENANT = "genai-sre"
PROBE_APP = "probes"


class AttributionLabels:
    """Bounded `(tenant, app)` label values from request headers."""

    def __init__(self, labels: LabelsConfig) -> None:
        self.tenant_header = labels.tenant_header.lower()
        self.app_header = labels.app_header.lower()
        self.tenant = BoundedLabel(labels.tenants, cap=labels.max_values)
        self.app = BoundedLabel(labels.apps, cap=labels.max_values)

    def __call__(self, headers: Mapping[str, str], earned: bool = True) -> tuple[str, str]:
        """`earned`: the request succeeded, so its values may earn a label slot."""
        return (
            self.tenant.observe(headers.get(self.tenant_header), earned),
            self.app.observe(headers.get(self.app_header), earned),
        )


def attribution_of(ex: Exchange) -> tuple[str, str]:
    """The `(tenant, app)` labels of a parsed exchange (bounded by the parser); probes are the sidecar's own."""
    if ex.probe:
        return PROBE_TENANT, PROBE_APP
    return ex.labels.get("tenant") or NONE, ex.labels.get("app") or NONE


class UserId:
    """`user.id` for spans: a keyed hash of the end user, or None when omitted by config."""

    def __init__(self, mode: str = "hashed", key: bytes = b"") -> None:
        self.mode = mode
        self._key = key

    @classmethod
    def from_config(cls, telemetry: TelemetryConfig, environ: Mapping[str, str] | None = None) -> UserId:
        env = os.environ if environ is None else environ
        key = env.get(telemetry.user_id_key_env, "") if telemetry.user_id_key_env else ""
        if telemetry.user_id == "hashed" and not key:
            logger.warning(
                "user.id is left out of spans: set %s to a secret key to export it as a keyed hash",
                telemetry.user_id_key_env or "telemetry.user_id_key_env",
            )
            return cls("omit")
        return cls(telemetry.user_id, key.encode())

    def __call__(self, user: str | None) -> str | None:
        if not user or self.mode == "omit":
            return None
        return hmac.new(self._key, user.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]
