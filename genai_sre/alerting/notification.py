"""What a receiver is handed: one notification for one alert group.

A `Notification` is the router's output and every receiver's input. It mirrors
the Alertmanager webhook payload (version "4"), and converts to and from it, so
the same record flows whether the router produced it in process or
Alertmanager posted it to `POST /admin/alertmanager`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from genai_sre.errors import ConfigError
from genai_sre.events import Alert

__all__ = ["Notification", "format_time", "group_key_hash", "parse_fraction", "parse_time"]

_GO_ZERO = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


def format_time(epoch: float | None) -> str:
    """RFC 3339 in UTC with millisecond precision; None becomes Go's zero time, as Alertmanager writes it."""
    if epoch is None:
        return _GO_ZERO
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str | None) -> float | None:
    """Parse RFC 3339 (up to nanoseconds, any offset); Go's zero time and empty mean "not set"."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, frac, zone = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def parse_fraction(value: str | None) -> float | None:
    """An annotation such as `budget_remaining`: `0.8` or `80%` both give 0.8; anything else None."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None


def group_key_hash(group_key: str) -> str:
    """sha256 of the group key, hex: what Alertmanager uses as PagerDuty's dedup_key."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert group, as sent to one receiver at one time.

    `status` is the group's: `firing` while any alert in it fires. `alerts`
    holds the firing alerts (minus silenced and inhibited ones) and, when the
    receiver wants them, the alerts resolved since the last notification.
    """

    receiver: str
    group_key: str
    status: Literal["firing", "resolved"]
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    sent_at: float
    truncated_alerts: int = 0
    external_url: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")

    @property
    def dedup_key(self) -> str:
        return group_key_hash(self.group_key)

    def to_webhook(self) -> dict[str, Any]:
        """The Alertmanager webhook payload, version "4"."""
        return {
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": self.truncated_alerts,
            "status": self.status,
            "receiver": self.receiver,
            "groupLabels": dict(self.group_labels),
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
            "externalURL": self.external_url,
            "alerts": [
                {
                    "status": a.status,
                    "labels": dict(a.labels),
                    "annotations": dict(a.annotations),
                    "startsAt": format_time(a.starts_at),
                    "endsAt": format_time(a.ends_at if a.status == "resolved" else None),
                    "generatorURL": a.generator_url,
                    "fingerprint": a.fingerprint,
                }
                for a in self.alerts
            ],
        }

    @classmethod
    def from_webhook(cls, payload: Any, received_at: float) -> Notification:
        """Read an Alertmanager webhook payload (version "4"); ConfigError names the bad field."""
        if not isinstance(payload, dict):
            raise ConfigError("webhook payload must be a JSON object")
        if str(payload.get("version", "")) != "4":
            raise ConfigError(f"webhook payload version must be '4', got {payload.get('version')!r}")
        raw_alerts = payload.get("alerts")
        if not isinstance(raw_alerts, list):
            raise ConfigError("webhook payload: 'alerts' must be a list")
        alerts = []
        for i, raw in enumerate(raw_alerts):
            try:
                status = raw["status"]
                if status not in ("firing", "resolved"):
                    raise ValueError(f"status must be firing or resolved, got {status!r}")
                starts = parse_time(raw.get("startsAt")) or received_at
                ends = parse_time(raw.get("endsAt"))
                alerts.append(
                    Alert(
                        labels=_str_map(raw.get("labels")),
                        annotations=_str_map(raw.get("annotations")),
                        status=status,
                        starts_at=starts,
                        ends_at=ends if status == "resolved" else None,
                        generator_url=str(raw.get("generatorURL", "")),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"webhook payload: alerts[{i}]: {exc}") from exc
        status = payload.get("status")
        if status not in ("firing", "resolved"):
            raise ConfigError(f"webhook payload: status must be firing or resolved, got {status!r}")
        group_key = payload.get("groupKey")
        if not isinstance(group_key, str) or not group_key:
            raise ConfigError("webhook payload: 'groupKey' must be a non-empty string")
        return cls(
            receiver=str(payload.get("receiver", "")),
            group_key=group_key,
            status=status,
            group_labels=_str_map(payload.get("groupLabels")),
            alerts=tuple(alerts),
            sent_at=received_at,
            truncated_alerts=int(payload.get("truncatedAlerts") or 0),
            external_url=str(payload.get("externalURL", "")),
        )


def _str_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected an object of strings, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}
