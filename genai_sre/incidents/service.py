"""The incident service: pages open incidents, everything else lands on their timeline.

It is an alert receiver itself (receiver type `incidents`), so pages reach it
through the same routing as PagerDuty or Slack; in fleet mode Alertmanager
posts its webhook to `POST /admin/alertmanager` instead (`ingest_webhook`).

A notification with a firing alert whose `severity` is in `open_on` (default
`page`) opens an incident keyed by the notification's group key, or joins the
open incident of that group. An alert already filed in an incident (same
fingerprint and start) never opens another one, so repeats are harmless.
When every alert of an incident has resolved, the incident resolves with it
(`auto_resolve`). Each change is one transaction of the store (SQLite or
PostgreSQL, serialised across processes); webhook bodies are recorded by their
sha256 in the same transaction, so a webhook answered 2xx is stored exactly
once even when Alertmanager sends it again, to this primary or another.

The methods are synchronous and touch the database; code on an event loop
calls them through `await service.call(method, ...)`, which runs them on the
store's own threads.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from genai_sre.alerting.notification import Notification, parse_fraction
from genai_sre.errors import ConfigError
from genai_sre.events import Alert, Annotation, Incident, TimelineEvent
from genai_sre.incidents.figures import Summary, incident_figures, summarize
from genai_sre.incidents.store import IncidentStore

if TYPE_CHECKING:
    from genai_sre.alerting.delivery import DeliveryRecord
    from genai_sre.storage.sql import Tx
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["IncidentService", "IngestResult", "NOTE_KINDS"]

logger = logging.getLogger(__name__)

NOTE_KINDS = ("note", "mitigation", "action_item")
DEPLOY_LOOKBACK_S = 3600.0

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class IngestResult:
    incident_id: str | None
    duplicate: bool


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _severity(pages: Sequence[Alert]) -> str:
    slos = {a.labels.get("slo", "") for a in pages}
    budget = [parse_fraction(a.annotations.get("budget_remaining")) for a in pages]
    if len(slos) > 1 or any(b is not None and b < 0 for b in budget):
        return "SEV-1"
    return "SEV-2"


def _describe(alert: Alert) -> str:
    slo = alert.labels.get("slo", "")
    parts = [alert.name or "alert", f"slo={slo}" if slo else "", f"severity={alert.labels.get('severity', '')}"]
    if alert.annotations.get("burn_rate"):
        parts.append(f"burn_rate={alert.annotations['burn_rate']}x")
    return " ".join(p for p in parts if p)


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        *,
        open_on: Sequence[str] = ("page",),
        auto_resolve: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self._metrics = metrics
        self._open_on = tuple(open_on)
        self._auto_resolve = auto_resolve

    @property
    def page_severities(self) -> tuple[str, ...]:
        """The `severity` label values that open incidents (the SLO file's page tier, `page` by default)."""
        return self._open_on

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a synchronous method off the event loop, on the store's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store.executor, functools.partial(fn, *args, **kwargs))

    # -- intake ---------------------------------------------------------------------------------

    async def send(self, notification: Notification) -> None:
        """Receiver entry point: the router hands over a notification."""
        await self.call(self.record, notification, "router")

    def record(self, notification: Notification, source: str = "router") -> str | None:
        with self.store.transaction() as db:
            incident_id, opened = self._apply(db, notification, source)
        self._after_change(incident_id, opened)
        return incident_id

    def ingest_webhook(self, body: bytes) -> IngestResult:
        """Apply an Alertmanager webhook (v4) exactly once; ConfigError when the body is malformed."""
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise ConfigError(f"webhook body is not JSON: {exc}") from exc
        key = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        now = self.clock()
        notification = Notification.from_webhook(payload, now)
        with self.store.transaction() as db:
            if self.store.has_receipt(db, key):
                return IngestResult(None, duplicate=True)
            incident_id, opened = self._apply(db, notification, "alertmanager")
            self.store.add_receipt(db, key, now, incident_id)
        self._after_change(incident_id, opened)
        return IngestResult(incident_id, duplicate=False)

    def _apply(self, db: Tx, n: Notification, source: str) -> tuple[str | None, bool]:
        now = self.clock()
        store = self.store
        incident_id = store.find_open(db, n.group_key)
        new_pages = [
            a
            for a in n.firing
            if a.labels.get("severity", "") in self._open_on
            and store.alert_incident(db, a.fingerprint, a.starts_at) is None
        ]
        opened = False
        if incident_id is None and new_pages:
            first = min(new_pages, key=lambda a: a.starts_at)
            title = first.annotations.get("summary") or f"{first.name} burning on SLO {first.labels.get('slo', '?')}"
            starts = [_float(a.annotations.get("burn_started_at")) for a in new_pages]
            known = [s for s in starts if s is not None]
            incident_id = store.create(
                db,
                title=title,
                group_key=n.group_key,
                severity=_severity(new_pages),
                opened_at=now,
                labels=n.common_labels,
                paged_at=first.starts_at,
                burn_start_at=min(known) if known else None,
            )
            opened = True
            store.add_event(
                db,
                incident_id,
                now,
                "opened",
                f"incident opened by {_describe(first)} ({source})",
                {"group_key": n.group_key},
            )
        if incident_id is None:
            attached = [store.alert_incident(db, a.fingerprint, a.starts_at) for a in n.alerts]
            incident_id = next((i for i in attached if i is not None), None)
        if incident_id is None:
            return None, False
        changed = False
        for alert in n.alerts:
            before = store.alert_status(db, incident_id, alert.fingerprint, alert.starts_at)
            if before == alert.status or (before is None and alert.status == "resolved"):
                continue  # unchanged, or resolved without ever firing into this incident (an inhibited ticket)
            store.upsert_alert(
                db,
                incident_id,
                alert.fingerprint,
                alert.starts_at,
                alert.status,
                alert.ends_at,
                alert.labels,
                alert.annotations,
            )
            at = alert.starts_at if alert.status == "firing" else (alert.ends_at or now)
            store.add_event(
                db,
                incident_id,
                at,
                f"alert_{alert.status}",
                _describe(alert),
                {"fingerprint": alert.fingerprint, "source": source},
            )
            changed = True
        if changed:
            store.add_event(
                db,
                incident_id,
                now,
                "notification",
                f"{n.status} notification from {source} ({len(n.firing)} firing, {len(n.resolved)} resolved)",
                {"receiver": n.receiver, "group_key": n.group_key},
            )
        incident = store.get(incident_id, db)
        if (
            self._auto_resolve
            and changed
            and incident is not None
            and incident.status != "resolved"
            and store.all_alerts_resolved(db, incident_id)
        ):
            store.set_status(db, incident_id, "resolved", "resolved_at", now)
            store.add_event(db, incident_id, now, "resolved", "every alert of the incident resolved")
        return incident_id, opened

    async def on_delivery(self, record: DeliveryRecord) -> None:
        """Delivery observer: notifications to other receivers land on the open incidents they concern."""
        await self.call(self.record_delivery, record)

    def record_delivery(self, record: DeliveryRecord) -> None:
        ids = self.store.open_incidents_with(record.fingerprints)
        if not ids:
            return
        with self.store.transaction() as db:
            for incident_id in ids:
                text = (
                    f"{record.status} notification to {record.receiver}: "
                    f"{record.outcome} after {record.attempts} attempt(s)"
                )
                self.store.add_event(db, incident_id, record.at, "notification", text, {"receiver": record.receiver})

    # -- people ---------------------------------------------------------------------------------

    def _require(self, incident_id: str, tx: Tx | None = None) -> Incident:
        incident = self.store.get(incident_id, tx)
        if incident is None:
            raise KeyError(f"no incident {incident_id!r}")
        return incident

    def ack(self, incident_id: str, text: str = "") -> Incident:
        now = self.clock()
        with self.store.transaction() as db:  # read inside the write: another primary may ack at the same time
            incident = self._require(incident_id, db)
            acked = incident.status == "open"
            if acked:
                self.store.set_status(db, incident.id, "acknowledged", "acknowledged_at", now)
                self.store.add_event(db, incident.id, now, "acknowledged", text or "acknowledged")
        if acked:
            self._observe("genai_sre_incident_time_to_acknowledge_seconds", now - incident.opened_at)
        return self._require(incident_id)

    def resolve(self, incident_id: str, text: str = "") -> Incident:
        now = self.clock()
        with self.store.transaction() as db:
            incident = self._require(incident_id, db)
            resolved = incident.status != "resolved"
            if resolved:
                if incident.acknowledged_at is None:
                    self.store.set_status(db, incident.id, "acknowledged", "acknowledged_at", now)
                self.store.set_status(db, incident.id, "resolved", "resolved_at", now)
                self.store.add_event(db, incident.id, now, "resolved", text or "resolved")
        if resolved:
            self._after_change(incident.id, False)
        return self._require(incident_id)

    def note(self, incident_id: str, text: str, kind: str = "note") -> TimelineEvent:
        if kind not in NOTE_KINDS:
            raise ValueError(f"note kind must be one of {', '.join(NOTE_KINDS)}, got {kind!r}")
        if not text.strip():
            raise ValueError("a note needs text")
        now = self.clock()
        with self.store.transaction() as db:
            incident = self._require(incident_id, db)
            self.store.add_event(db, incident.id, now, kind, text)
        return TimelineEvent(incident.id, now, kind, text)

    def annotate(self, annotation: Annotation) -> int:
        """Record a deploy marker, model version change or mitigation (shown on nearby incidents' timelines)."""
        with self.store.transaction() as db:
            annotation_id = self.store.add_annotation(db, annotation)
        self._publish_dora()
        return annotation_id

    # -- views ----------------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident | None:
        return self.store.get(incident_id)

    def list_incidents(self, status: str | None = None, limit: int = 100) -> list[Incident]:
        return self.store.list_incidents(status, limit)

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        """Stored events plus annotations from an hour before the incident to its end."""
        incident = self._require(incident_id)
        events = list(self.store.events(incident.id))
        end = incident.resolved_at if incident.resolved_at is not None else self.clock()
        for a in self.store.annotations(start=incident.opened_at - DEPLOY_LOOKBACK_S, end=end):
            labels = " ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
            text = " ".join(p for p in (labels, a.text) if p)
            events.append(TimelineEvent(incident.id, a.at, a.kind, text, dict(a.labels)))
        return sorted(events, key=lambda e: e.at)

    def detail(self, incident_id: str) -> dict[str, Any]:
        incident = self._require(incident_id)
        figs = incident_figures(incident, self.store.paged_at(incident.id))
        return {
            "incident": incident_json(incident),
            "figures": {
                "time_to_detect_s": figs.time_to_detect_s,
                "time_to_ack_s": figs.time_to_ack_s,
                "time_to_resolve_s": figs.time_to_resolve_s,
            },
            "alerts": self.store.alerts(incident.id),
            "timeline": [
                {"at": e.at, "kind": e.kind, "text": e.text, "data": dict(e.data)} for e in self.timeline(incident.id)
            ],
        }

    def stats(self) -> Summary:
        return summarize(self.store.all_incidents(), self.store.annotations(kind="deploy"))

    # -- metrics --------------------------------------------------------------------------------

    def _after_change(self, incident_id: str | None, opened: bool) -> None:
        if self._metrics is None or incident_id is None:
            return
        incident = self.store.get(incident_id)
        if incident is None:
            return
        if opened:
            self._metrics.counter("genai_sre_incidents_opened").labels(severity=incident.severity).inc()
            figs = incident_figures(incident, self.store.paged_at(incident.id))
            if figs.time_to_detect_s is not None:
                self._observe("genai_sre_incident_time_to_detect_seconds", figs.time_to_detect_s)
        if incident.status == "resolved" and incident.resolved_at is not None:
            self._observe("genai_sre_incident_time_to_resolve_seconds", incident.resolved_at - incident.opened_at)
        self._metrics.gauge("genai_sre_incidents_open").set(self.store.count_active())
        self._publish_dora()

    def _observe(self, name: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.histogram(name).observe(seconds)

    def _publish_dora(self) -> None:
        if self._metrics is None:
            return
        for m in self.stats().models:
            self._metrics.gauge("genai_sre_change_failure_ratio").labels(model=m.model).set(m.change_failure_rate)
            if m.recovery_s is not None:
                self._metrics.gauge("genai_sre_failed_deployment_recovery_seconds").labels(model=m.model).set(
                    m.recovery_s
                )


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "group_key": incident.group_key,
        "severity": incident.severity,
        "status": incident.status,
        "opened_at": incident.opened_at,
        "acknowledged_at": incident.acknowledged_at,
        "resolved_at": incident.resolved_at,
        "detected_burn_start_at": incident.detected_burn_start_at,
        "labels": dict(incident.labels),
    }
