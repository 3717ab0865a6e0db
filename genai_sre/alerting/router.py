"""The alert router: groups, waits, deduplicates, inhibits, silences, and notifies.

`submit(alert)` files an alert into one group per matching route (the group is
keyed by the route and its `group_by` labels; alerts inside it by fingerprint,
so a re-sent alert replaces itself). `flush()` runs on a tick: a new group is
notified `group_wait_s` after it appeared, then at most every
`group_interval_s` when its set of firing or resolved alerts changed, and
every `repeat_interval_s` while it keeps firing unchanged (Alertmanager's
`needsUpdate`). Firing alerts that an active silence matches, or that an
inhibition rule mutes (a firing page mutes the ticket of the same SLO), are
left out. Deliveries for one group run in order, off the tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_sre.alerting.config import AlertingConfig, load_alerting_config
from genai_sre.alerting.delivery import Delivery, DeliveryRecord
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.receivers import Receiver, build_receiver
from genai_sre.alerting.receivers.http import HTTPSender
from genai_sre.alerting.routing import (
    InhibitRule,
    Route,
    compile_route,
    group_key,
    group_labels,
    inhibited_by,
    match_routes,
)
from genai_sre.alerting.silences import Silences
from genai_sre.errors import StorageError
from genai_sre.events import Alert

if TYPE_CHECKING:
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["AlertRouter"]

logger = logging.getLogger(__name__)


@dataclass
class _Group:
    key: str
    route: Route
    labels: dict[str, str]
    next_flush_at: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    last_notified_at: float | None = None
    last_firing: frozenset[str] = frozenset()
    last_resolved: frozenset[str] = frozenset()


class AlertRouter:
    def __init__(
        self,
        config: AlertingConfig,
        receivers: Mapping[str, Receiver],
        *,
        clock: Callable[[], float] = time.time,
        delivery: Delivery | None = None,
        silences: Silences | None = None,
        metrics: Metrics | None = None,
        http: HTTPSender | None = None,
    ) -> None:
        self.config = config
        self.route = compile_route(config.route)
        self.inhibit_rules = tuple(InhibitRule.from_config(r) for r in config.inhibit_rules)
        self.receivers = dict(receivers)
        self.clock = clock
        self.delivery = delivery or Delivery(config.delivery, clock, metrics)
        self.silences = silences or Silences(clock)
        self._metrics = metrics
        self._http = http
        self._send_resolved = {r.name: r.send_resolved for r in config.receivers}
        self._groups: dict[str, _Group] = {}
        self._firing: dict[str, Alert] = {}
        self._chains: dict[str, asyncio.Task[DeliveryRecord | None]] = {}
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls,
        path: str | Path | AlertingConfig,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        *,
        data_dir: str | Path = ".",
        environ: Mapping[str, str] | None = None,
        incidents: Receiver | None = None,
        silences: Silences | None = None,
    ) -> AlertRouter:
        """Build the router and its receivers from `alerting.yaml` (or an already loaded config).

        `incidents` is the incident service of this process, for receivers of type `incidents`;
        when it has an `on_delivery(record)` method, every delivery is reported to it.
        `silences` (kept in the incident store on a primary) replaces the config's `silences_file`.
        """
        config = path if isinstance(path, AlertingConfig) else load_alerting_config(path, environ)
        data = Path(data_dir)
        http = HTTPSender()
        injected: dict[str, Any] = {"http": http, "clock": clock, "data_dir": data, "incidents": incidents}
        if environ is not None:
            injected["environ"] = environ
        receivers = {r.name: build_receiver(r.name, r.type, r.options, **injected) for r in config.receivers}
        log = data / config.delivery.log_file if config.delivery.log_file else None
        delivery = Delivery(config.delivery, clock, metrics, log)
        on_delivery = getattr(incidents, "on_delivery", None)
        if callable(on_delivery):
            own = {r.name for r in config.receivers if r.type == "incidents"}  # already on the timeline

            def observe(record: DeliveryRecord) -> object:
                return on_delivery(record) if record.receiver not in own else None

            delivery.observe(observe)
        if silences is None:
            silences = Silences(clock, data / config.silences_file if config.silences_file else None)
        return cls(config, receivers, clock=clock, delivery=delivery, silences=silences, metrics=metrics, http=http)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        for receiver in self.receivers.values():
            start = getattr(receiver, "start", None)
            if callable(start):
                await start()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="alert-router")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            try:
                await self.flush()
            except Exception:  # isolation boundary: one bad tick must not stop alerting
                logger.exception("alert router tick failed")

    async def aclose(self, timeout_s: float = 10.0) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        try:
            await asyncio.wait_for(self.drain(), timeout_s)
        except TimeoutError:
            logger.warning("alert router closed with deliveries still pending")
            for task in self._chains.values():
                task.cancel()
        for receiver in self.receivers.values():
            close = getattr(receiver, "aclose", None)
            if callable(close):
                await close()
        if self._http is not None:
            await self._http.aclose()

    async def drain(self) -> None:
        """Wait until every scheduled delivery has finished."""
        while self._chains:
            await asyncio.gather(*self._chains.values(), return_exceptions=True)
            self._chains = {k: t for k, t in self._chains.items() if not t.done()}

    # -- intake ---------------------------------------------------------------------------------

    async def submit(self, alert: Alert) -> None:
        """File one firing or resolved alert (from the SLO engine); notifications follow on the tick."""
        now = self.clock()
        if alert.status == "firing" and not alert.starts_at:
            alert = replace(alert, starts_at=now)
        fp = alert.fingerprint
        if alert.status == "resolved":
            known = self._firing.get(fp)
            if not alert.starts_at and known is not None:
                alert = replace(alert, starts_at=known.starts_at)  # the engine may not repeat when it started
            if alert.ends_at is None:
                alert = replace(alert, ends_at=now)
        self._count("genai_sre_alerts_received", status=alert.status)
        if alert.status == "firing":
            self._firing[fp] = alert
            reason = self._muted(alert, now)
            if reason:
                self._count("genai_sre_alerts_suppressed", reason=reason)
        else:
            self._firing.pop(fp, None)
        for route in match_routes(self.route, alert.labels):
            key = group_key(route, alert.labels)
            group = self._groups.get(key)
            if group is None:
                if alert.status == "resolved":
                    continue  # nothing was ever notified for this group
                group = _Group(key, route, group_labels(route, alert.labels), now + route.group_wait_s)
                self._groups[key] = group
            group.alerts[fp] = alert

    def _muted(self, alert: Alert, now: float) -> str | None:
        if self.silences.silenced_by(alert.labels, now):
            return "silenced"
        if inhibited_by(alert, self._firing, self.inhibit_rules):
            return "inhibited"
        return None

    # -- notification ---------------------------------------------------------------------------

    async def flush(self, now: float | None = None) -> list[Notification]:
        """Notify every group that is due; returns what was scheduled for delivery."""
        t = self.clock() if now is None else now
        if any(t >= g.next_flush_at for g in self._groups.values()):
            try:  # silences made through another process or primary apply from this flush on
                await asyncio.to_thread(self.silences.refresh)
            except StorageError as exc:
                logger.warning("silences not refreshed, the last known ones apply: %s", exc)
        out: list[Notification] = []
        for key in list(self._groups):
            group = self._groups[key]
            if t < group.next_flush_at:
                continue
            notification = self._flush_group(group, t)
            group.next_flush_at = t + group.route.group_interval_s
            if notification is not None:
                out.append(notification)
                self._schedule(group.route.receiver, notification)
            for fp in [fp for fp, a in group.alerts.items() if a.status == "resolved"]:
                del group.alerts[fp]
            if not group.alerts:
                del self._groups[key]
        return out

    def _flush_group(self, group: _Group, now: float) -> Notification | None:
        firing = [a for a in group.alerts.values() if a.status == "firing" and not self._muted(a, now)]
        resolved = [a for a in group.alerts.values() if a.status == "resolved"]
        firing_set = frozenset(a.fingerprint for a in firing)
        resolved_set = frozenset(a.fingerprint for a in resolved)
        send_resolved = self._send_resolved.get(group.route.receiver, True)
        if not self._needs_update(group, firing_set, resolved_set, send_resolved, now):
            return None
        group.last_notified_at = now
        group.last_firing = firing_set
        group.last_resolved = resolved_set
        alerts = tuple(firing + (resolved if send_resolved else []))
        if not alerts:
            return None
        return Notification(
            receiver=group.route.receiver,
            group_key=group.key,
            status="firing" if firing else "resolved",
            group_labels=dict(group.labels),
            alerts=alerts,
            sent_at=now,
            external_url=self.config.external_url,
        )

    @staticmethod
    def _needs_update(
        group: _Group, firing: frozenset[str], resolved: frozenset[str], send_resolved: bool, now: float
    ) -> bool:
        if group.last_notified_at is None:
            return bool(firing)
        if not firing <= group.last_firing:
            return True
        if not firing and not group.last_firing:
            return False  # fired and resolved between two notifications: the receiver never knew
        if send_resolved and not resolved <= group.last_resolved:
            return True
        if firing != group.last_firing and not firing:
            return True  # everything stopped firing (e.g. silenced): tell the receiver once
        return bool(firing) and now - group.last_notified_at >= group.route.repeat_interval_s

    def _schedule(self, receiver_name: str, notification: Notification) -> None:
        receiver = self.receivers.get(receiver_name)
        if receiver is None:
            logger.error("route names unknown receiver %s", receiver_name)
            return
        previous = self._chains.get(notification.group_key + "\x00" + receiver_name)

        async def run() -> DeliveryRecord | None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous  # keep firing → resolved order within a group
            return await self.delivery.deliver(receiver_name, receiver, notification)

        self._chains[notification.group_key + "\x00" + receiver_name] = asyncio.create_task(run())

    # -- views ----------------------------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts the router holds now, with their state (active, silenced, inhibited)."""
        now = self.clock()
        seen: dict[str, dict[str, Any]] = {}
        for group in self._groups.values():
            for fp, a in group.alerts.items():
                state = "resolved" if a.status == "resolved" else (self._muted(a, now) or "active")
                seen[fp] = {"fingerprint": fp, "labels": dict(a.labels), "status": a.status, "state": state}
        return list(seen.values())

    def _count(self, name: str, **labels: str) -> None:
        if self._metrics is not None:
            self._metrics.counter(name).labels(**labels).inc()
