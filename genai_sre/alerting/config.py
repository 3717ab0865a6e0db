"""`alerting.yaml`: the routing tree, inhibition rules, receivers and delivery settings.

Every key is documented in `configs/alerting.yaml`. Secrets (PagerDuty routing
keys, Slack and webhook URLs) are never written in the file: receivers take the
*name* of the environment variable that holds them (`routing_key_env`,
`url_env`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genai_sre.alerting.matchers import parse_matchers
from genai_sre.schema import build, read_document

__all__ = [
    "AlertingConfig",
    "DeliveryConfig",
    "InhibitRuleConfig",
    "ReceiverConfig",
    "RouteConfig",
    "load_alerting_config",
]


def _check_matchers(texts: tuple[str, ...]) -> None:
    parse_matchers(texts)  # raises ValueError naming the bad matcher


@dataclass(frozen=True)
class RouteConfig:
    """A node of the routing tree. Unset (None) options are inherited from the parent."""

    receiver: str | None = None
    matchers: tuple[str, ...] = ()
    group_by: tuple[str, ...] | None = None
    group_wait_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    continue_: bool = False
    routes: tuple[RouteConfig, ...] = ()

    def __post_init__(self) -> None:
        _check_matchers(self.matchers)
        for name in ("group_wait_s", "group_interval_s", "repeat_interval_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True)
class InhibitRuleConfig:
    source_matchers: tuple[str, ...]
    target_matchers: tuple[str, ...]
    equal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_matchers(self.source_matchers)
        _check_matchers(self.target_matchers)


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    send_resolved: bool = True


@dataclass(frozen=True)
class DeliveryConfig:
    timeout_s: float = 10.0
    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    log_file: str | None = "deliveries.jsonl"
    log_entries: int = 1000
    log_max_bytes: int = 10 * 1024 * 1024  # the log rotates past this size (0: never)
    log_keep: int = 5  # rotated files kept (deliveries.jsonl.1 ... .5)
    log_max_age_days: float = 30.0  # rotated files older than this are deleted (0: kept)

    def __post_init__(self) -> None:
        if self.log_max_bytes < 0 or self.log_keep < 0 or self.log_max_age_days < 0:
            raise ValueError("log_max_bytes, log_keep and log_max_age_days must not be negative")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")


@dataclass(frozen=True)
class AlertingConfig:
    version: Literal["genai-sre/alerting/v1"] = "genai-sre/alerting/v1"
    route: RouteConfig = field(default_factory=lambda: RouteConfig(receiver="stdout"))
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    receivers: tuple[ReceiverConfig, ...] = (ReceiverConfig(name="stdout", type="stdout"),)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    silences_file: str | None = "silences.json"
    external_url: str = ""
    tick_s: float = 0.5

    def __post_init__(self) -> None:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique, repeated: {', '.join(dupes)}")
        if self.route.receiver is None:
            raise ValueError("route.receiver is required at the root of the routing tree")
        if self.route.matchers:
            raise ValueError("the root route must match every alert: remove route.matchers")
        known = set(names)
        for receiver in _route_receivers(self.route):
            if receiver not in known:
                raise ValueError(f"route names receiver {receiver!r}, which is not defined ({sorted(known)})")

    def receiver(self, name: str) -> ReceiverConfig:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)


def _route_receivers(route: RouteConfig) -> list[str]:
    out = [route.receiver] if route.receiver else []
    for child in route.routes:
        out.extend(_route_receivers(child))
    return out


def _rename_continue(node: Any) -> Any:
    # `continue` is a Python keyword: the dataclass field is `continue_`.
    if isinstance(node, dict):
        out = {("continue_" if k == "continue" else k): v for k, v in node.items()}
        if isinstance(out.get("routes"), list):
            out["routes"] = [_rename_continue(r) for r in out["routes"]]
        return out
    return node


def load_alerting_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AlertingConfig:
    """Read `alerting.yaml`; ConfigError names the file, line and key of anything wrong."""
    doc = read_document(path, "alerting config", environ)
    data = dict(doc.data)
    if "route" in data:
        data["route"] = _rename_continue(data["route"])
    return build(AlertingConfig, data, doc)
