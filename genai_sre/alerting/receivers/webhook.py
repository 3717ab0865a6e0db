"""Generic webhook: POSTs the Alertmanager version-4 payload to a URL from the environment.

Optionally sends `Authorization: Bearer <token>` from the variable named by
`bearer_token_env` (the sidecar's own `POST /admin/alertmanager` needs it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from genai_sre.alerting.notification import Notification
from genai_sre.alerting.receivers import env_secret
from genai_sre.alerting.receivers.http import HTTPSender

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    def __init__(
        self,
        url_env: str,
        *,
        bearer_token_env: str | None = None,
        max_alerts: int = 0,
        http: HTTPSender | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._url = env_secret(env, url_env, "webhook")
        self._headers = {}
        if bearer_token_env:
            self._headers["Authorization"] = f"Bearer {env_secret(env, bearer_token_env, 'webhook bearer token')}"
        if max_alerts < 0:
            raise ValueError("max_alerts must be >= 0 (0 sends all)")
        self._max_alerts = max_alerts
        self._http = http or HTTPSender()

    async def send(self, notification: Notification) -> None:
        body = notification.to_webhook()
        if self._max_alerts and len(body["alerts"]) > self._max_alerts:
            body["truncatedAlerts"] = len(body["alerts"]) - self._max_alerts
            body["alerts"] = body["alerts"][: self._max_alerts]
        await self._http.post_json(self._url, body, headers=self._headers, what="webhook")
