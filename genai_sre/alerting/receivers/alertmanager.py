"""Pushes alerts to Alertmanager's `POST /api/v2/alerts` (the production path).

Alertmanager forgets a firing alert whose `endsAt` has passed, so while an
alert fires it is re-sent every `resend_interval_s` with `endsAt` four
intervals ahead (what Prometheus does). A resolved alert is sent with its real
`endsAt` and re-sent for `resolved_retention_s` in case Alertmanager restarted
and missed it. Alertmanager then owns grouping, inhibition and routing: route
to this receiver with `group_by: ['...']` and `group_wait_s: 0`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from genai_sre.alerting.notification import Notification, format_time
from genai_sre.alerting.receivers.http import HTTPSender
from genai_sre.errors import DeliveryError
from genai_sre.events import Alert

__all__ = ["AlertmanagerReceiver", "postable_alert"]

logger = logging.getLogger(__name__)


def postable_alert(alert: Alert, now: float, firing_ttl_s: float) -> dict[str, Any]:
    """One `postableAlert` of the Alertmanager API v2."""
    ends = (alert.ends_at or now) if alert.status == "resolved" else now + firing_ttl_s
    starts = min(alert.starts_at or now, ends - 0.001)  # Alertmanager refuses startsAt >= endsAt
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(starts),
        "endsAt": format_time(ends),
    }
    if alert.generator_url:
        body["generatorURL"] = alert.generator_url
    return body


class AlertmanagerReceiver:
    def __init__(
        self,
        url: str,
        *,
        resend_interval_s: float = 60.0,
        resolved_retention_s: float = 300.0,
        http: HTTPSender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alertmanager url must be http(s)://host:port, got {url!r}")
        if resend_interval_s <= 0:
            raise ValueError("resend_interval_s must be > 0")
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self._resend = resend_interval_s
        self._retention = resolved_retention_s
        self._http = http or HTTPSender()
        self._clock = clock
        self._known: dict[str, Alert] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def firing_ttl_s(self) -> float:
        return 4 * self._resend

    async def send(self, notification: Notification) -> None:
        now = self._clock()
        for alert in notification.alerts:
            self._known[alert.fingerprint] = alert
        await self._push(list(notification.alerts), now)

    async def _push(self, alerts: list[Alert], now: float) -> None:
        if alerts:
            body = [postable_alert(a, now, self.firing_ttl_s) for a in alerts]
            await self._http.post_json(self._url, body, what="alertmanager")

    def _current(self, now: float) -> list[Alert]:
        stale = [
            fp for fp, a in self._known.items() if a.status == "resolved" and (a.ends_at or now) + self._retention < now
        ]
        for fp in stale:
            del self._known[fp]
        return list(self._known.values())

    async def resend(self) -> None:
        """Re-send every firing and recently resolved alert once."""
        now = self._clock()
        await self._push(self._current(now), now)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._resend)
            try:
                await self.resend()
            except DeliveryError as exc:  # isolation boundary: the next round tries again
                logger.warning("alertmanager re-send failed: %s", exc)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="alertmanager-resend")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
