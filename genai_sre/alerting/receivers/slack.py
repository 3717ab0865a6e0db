"""Slack incoming webhook, with a Block Kit message and a plain-text fallback.

The webhook URL is a secret: it comes from the environment variable named by
`url_env` and never appears in logs or errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from genai_sre.alerting.notification import Notification, parse_fraction
from genai_sre.alerting.receivers import env_secret
from genai_sre.alerting.receivers.http import HTTPSender

__all__ = ["SlackReceiver", "slack_message"]


def _pct(value: str | None) -> str | None:
    fraction = parse_fraction(value)
    return f"{fraction * 100:.1f}%" if fraction is not None else (value or None)


def slack_message(n: Notification) -> dict[str, Any]:
    labels, ann = n.common_labels, n.common_annotations
    slo = labels.get("slo", "?")
    severity = labels.get("severity", "")
    tag = "RESOLVED" if n.status == "resolved" else (severity.upper() or "FIRING")
    first = n.alerts[0] if n.alerts else None
    summary = ann.get("summary") or (first.annotations.get("summary") if first else "") or labels.get("alertname", "")
    text = f"[{tag}] {summary}"
    facts = [f"*SLO:* `{slo}`"]
    if ann.get("burn_rate"):
        facts.append(f"*Burn rate:* {ann['burn_rate']}x")
    budget = _pct(ann.get("budget_remaining"))
    if budget:
        facts.append(f"*Budget left:* {budget}")
    facts.append(f"*Alerts:* {len(n.firing)} firing, {len(n.resolved)} resolved")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
    ]
    if ann.get("evidence"):
        evidence = f"*Top evidence:*\n{ann['evidence'][:2800]}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": evidence}})
    links = []
    for key, label in (("dashboard_url", "Dashboard"), ("runbook_url", "Runbook")):
        if ann.get(key):
            links.append(f"<{ann[key]}|{label}>")
    if first and first.generator_url:
        links.append(f"<{first.generator_url}|Source>")
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
    return {"text": text, "blocks": blocks}


class SlackReceiver:
    def __init__(
        self, url_env: str, *, http: HTTPSender | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self._url = env_secret(os.environ if environ is None else environ, url_env, "slack")
        self._http = http or HTTPSender()

    async def send(self, notification: Notification) -> None:
        await self._http.post_json(self._url, slack_message(notification), what="slack")
