"""PagerDuty Events API v2: `trigger` while a group fires, `resolve` when it resolves.

The `dedup_key` is sha256(groupKey) in hex, the key Alertmanager itself uses,
so pages sent by the sidecar and by Alertmanager collapse into one PagerDuty
incident. The routing key comes from the environment variable named by
`routing_key_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from genai_sre.alerting.notification import Notification, format_time
from genai_sre.alerting.receivers import env_secret
from genai_sre.alerting.receivers.http import HTTPSender

__all__ = ["DEFAULT_SEVERITY_MAP", "PagerDutyReceiver", "pagerduty_event"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_SEVERITY_MAP: Mapping[str, str] = {"page": "critical", "critical": "critical", "ticket": "warning"}
_PD_SEVERITIES = ("critical", "error", "warning", "info")


def pagerduty_event(
    n: Notification,
    routing_key: str,
    *,
    source: str = "genai-sre",
    severity_map: Mapping[str, str] = DEFAULT_SEVERITY_MAP,
    default_severity: str = "error",
) -> dict[str, Any]:
    """The Events v2 body for one notification (schema: PagerDuty/api-schema events-v2)."""
    event: dict[str, Any] = {"routing_key": routing_key, "dedup_key": n.dedup_key}
    if n.status == "resolved":
        event["event_action"] = "resolve"
        return event
    labels, ann = n.common_labels, n.common_annotations
    first = n.firing[0] if n.firing else n.alerts[0]
    summary = ann.get("summary") or first.annotations.get("summary") or f"{first.name} firing"
    details: dict[str, Any] = {"firing": len(n.firing), "resolved": len(n.resolved), "group_key": n.group_key}
    details.update({k: v for k, v in labels.items()})
    for key in ("burn_rate", "budget_remaining", "burn_started_at", "evidence"):
        if key in ann:
            details[key] = ann[key]
    event["event_action"] = "trigger"
    event["payload"] = {
        "summary": summary[:1024],
        "source": labels.get("service") or source,
        "severity": severity_map.get(labels.get("severity", ""), default_severity),
        "timestamp": format_time(first.starts_at),
        "component": labels.get("slo", ""),
        "group": labels.get("service") or source,
        "class": labels.get("alertname", "slo_burn_rate"),
        "custom_details": details,
    }
    links = []
    for key, text in (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard")):
        if ann.get(key):
            links.append({"href": ann[key], "text": text})
    if first.generator_url:
        links.append({"href": first.generator_url, "text": "Source"})
    if links:
        event["links"] = links
    event["client"] = "genai-sre"
    return event


class PagerDutyReceiver:
    def __init__(
        self,
        routing_key_env: str,
        *,
        url: str = EVENTS_URL,
        source: str = "genai-sre",
        severity_map: Mapping[str, str] | None = None,
        default_severity: str = "error",
        http: HTTPSender | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._routing_key = env_secret(os.environ if environ is None else environ, routing_key_env, "pagerduty")
        merged = {**DEFAULT_SEVERITY_MAP, **(severity_map or {})}
        for value in (*merged.values(), default_severity):
            if value not in _PD_SEVERITIES:
                raise ValueError(f"pagerduty severity {value!r} must be one of {', '.join(_PD_SEVERITIES)}")
        self._map = merged
        self._default = default_severity
        self._url = url
        self._source = source
        self._http = http or HTTPSender()

    async def send(self, notification: Notification) -> None:
        body = pagerduty_event(
            notification, self._routing_key, source=self._source, severity_map=self._map, default_severity=self._default
        )
        await self._http.post_json(self._url, body, what="pagerduty")
