"""The routing tree: which routes an alert matches, and the group it joins there.

Pure functions over a compiled tree, following Alertmanager 0.25: the root
matches everything; children are tried in order and the first match wins
unless it has `continue`; an alert no child matches stays at the parent; unset
options are inherited. Group keys have Alertmanager's shape,
`{}/{severity="page"}:{alertname="X", slo="y"}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from genai_sre.alerting.config import InhibitRuleConfig, RouteConfig
from genai_sre.alerting.matchers import Matcher, matches_all, parse_matchers
from genai_sre.events import Alert

__all__ = ["InhibitRule", "Route", "compile_route", "group_key", "inhibited_by", "match_routes"]

ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Route:
    key: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    continue_: bool
    routes: tuple[Route, ...]


def compile_route(cfg: RouteConfig, parent: Route | None = None) -> Route:
    matchers = parse_matchers(cfg.matchers)
    if parent is None:
        key, receiver = "{}", cfg.receiver or ""
        group_by: tuple[str, ...] = cfg.group_by if cfg.group_by is not None else ("alertname", "slo")
        wait = cfg.group_wait_s if cfg.group_wait_s is not None else 30.0
        interval = cfg.group_interval_s if cfg.group_interval_s is not None else 300.0
        repeat = cfg.repeat_interval_s if cfg.repeat_interval_s is not None else 4 * 3600.0
    else:
        key = parent.key + "/{" + ", ".join(str(m) for m in matchers) + "}"
        receiver = cfg.receiver or parent.receiver
        group_by = cfg.group_by if cfg.group_by is not None else parent.group_by
        wait = cfg.group_wait_s if cfg.group_wait_s is not None else parent.group_wait_s
        interval = cfg.group_interval_s if cfg.group_interval_s is not None else parent.group_interval_s
        repeat = cfg.repeat_interval_s if cfg.repeat_interval_s is not None else parent.repeat_interval_s
    node = Route(key, receiver, matchers, tuple(group_by), wait, interval, repeat, cfg.continue_, ())
    children = []
    seen: dict[str, int] = {}
    for child_cfg in cfg.routes:
        child = compile_route(child_cfg, node)
        count = seen.get(child.key, 0)
        seen[child.key] = count + 1
        if count:  # two siblings with the same matchers: keep their group keys apart
            child = _rekey(child, f"{child.key}/{count}")
        children.append(child)
    return Route(key, receiver, matchers, tuple(group_by), wait, interval, repeat, cfg.continue_, tuple(children))


def _rekey(route: Route, key: str) -> Route:
    return Route(
        key,
        route.receiver,
        route.matchers,
        route.group_by,
        route.group_wait_s,
        route.group_interval_s,
        route.repeat_interval_s,
        route.continue_,
        route.routes,
    )


def match_routes(route: Route, labels: Mapping[str, str]) -> list[Route]:
    """Every route the alert ends at (more than one only through `continue`)."""
    if not matches_all(route.matchers, labels):
        return []
    found: list[Route] = []
    for child in route.routes:
        hits = match_routes(child, labels)
        found.extend(hits)
        if hits and not child.continue_:
            break
    return found or [route]


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    if ALL_LABELS in route.group_by:
        return dict(labels)
    return {k: labels[k] for k in route.group_by if k in labels}


def group_key(route: Route, labels: Mapping[str, str]) -> str:
    grouped = group_labels(route, labels)
    inner = ", ".join(f"{k}={json.dumps(grouped[k], ensure_ascii=False)}" for k in sorted(grouped))
    return f"{route.key}:{{{inner}}}"


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_config(cls, cfg: InhibitRuleConfig) -> InhibitRule:
        return cls(parse_matchers(cfg.source_matchers), parse_matchers(cfg.target_matchers), cfg.equal)


def inhibited_by(alert: Alert, firing: Mapping[str, Alert], rules: tuple[InhibitRule, ...]) -> str | None:
    """The fingerprint of a firing alert that inhibits `alert`, or None.

    As in Alertmanager, an alert matching both sides of a rule cannot be
    inhibited by an alert that also matches both sides.
    """
    own = alert.fingerprint
    for rule in rules:
        if not matches_all(rule.target, alert.labels):
            continue
        both = matches_all(rule.source, alert.labels)
        for fp, src in firing.items():
            if fp == own or src.status != "firing" or not matches_all(rule.source, src.labels):
                continue
            if both and matches_all(rule.target, src.labels):
                continue
            if all(src.labels.get(k, "") == alert.labels.get(k, "") for k in rule.equal):
                return fp
    return None
