"""SLO definitions: the schema of `configs/slos.yaml` as frozen dataclasses.

`load_slos(path)` reads the file through `genai_sre.schema`, so every error
names the file, the line and the key. The same `SLOFile` feeds the in-process
engine (`engine.py`), the SLI recorder (`sli.py`) and the rule generator
(`rules.py`), which is what keeps the two evaluators in step.

Durations are Prometheus-style strings (`30s`, `5m`, `1h`, `1d`, `1w`, or
compound `1h30m`). Objectives are percentages in (0, 100).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genai_sre.errors import ConfigError
from genai_sre.schema import build, load_document, read_document

__all__ = [
    "AlertWindow",
    "AlertWindows",
    "Filters",
    "SLISpec",
    "SLOAlerting",
    "SLOFile",
    "SLOSpec",
    "SelfMonitoring",
    "Severities",
    "SeverityAlerting",
    "format_duration",
    "load_slos",
    "parse_duration",
    "parse_selector",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ALERTNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*(?:,|$)')
# labels the generated selectors set themselves
_RESERVED_MATCHERS = frozenset({"slo", "outcome", "__name__"})


def parse_selector(text: str) -> tuple[tuple[str, str, str], ...]:
    """PromQL label matchers (`app="shop", namespace=~"prod-.*"`) as (label, operator, quoted value) triples."""
    text = text.strip().removeprefix("{").removesuffix("}").strip()
    out: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(
                f"selector {text!r}: expected PromQL label matchers such as app=\"shop\", namespace=~\"prod-.*\""
            )
        if m.group(1) in _RESERVED_MATCHERS:
            raise ValueError(f"selector {text!r}: label {m.group(1)!r} is set by genai-sre")
        out.append((m.group(1), m.group(2), m.group(3)))
        pos = m.end()
    return tuple(out)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration string (`5m`, `1h30m`, `30d`)."""
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text or total <= 0:
        raise ValueError(f"{text!r} is not a positive duration such as 30s, 5m, 1h, 30d or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration string for whole seconds (3600 -> `1h`, 5400 -> `90m`)."""
    s = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):  # 30d, as Sloth and the Workbook write it
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _check_duration(what: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


SLIKind = Literal["availability", "latency", "quality", "time_slice"]


@dataclass(frozen=True)
class SLISpec:
    """How an exchange (or a time slice) becomes a good or bad event.

    - `availability`: bad when the upstream failed (5xx, timeout, connection
      error, cut stream); counted inline by the proxy.
    - `latency`: bad when `metric` (`ttft` or `duration`) exceeds `threshold_s`;
      exchanges without that timing (failed requests) are left out.
    - `quality`: bad when the finding `finding` of detector instance `detector`
      has a score >= `threshold`; exchanges that detector did not score are left out.
    - `time_slice`: one event per `slice`; a slice is good when the `statistic`
      (max or mean) of the finding's score (or of `attribute`, when set) within
      the slice stays under `threshold`. Slices without data are left out.
    """

    kind: SLIKind
    metric: Literal["ttft", "duration"] = "ttft"
    threshold_s: float | None = None
    detector: str | None = None
    finding: str | None = None
    attribute: str | None = None
    threshold: float | None = None
    statistic: Literal["max", "mean"] = "max"
    slice: str = "1m"
    include_probes: bool = False

    def __post_init__(self) -> None:
        if self.kind == "latency" and (self.threshold_s is None or self.threshold_s <= 0):
            raise ValueError("a latency SLI needs a positive threshold_s")
        if self.kind in ("quality", "time_slice"):
            if not self.detector:
                raise ValueError(f"a {self.kind} SLI needs the detector instance name in 'detector'")
            if self.threshold is None:
                raise ValueError(f"a {self.kind} SLI needs a 'threshold'")
        if self.kind == "time_slice":
            _check_duration("slice", self.slice)

    @property
    def slice_s(self) -> float:
        return parse_duration(self.slice)


@dataclass(frozen=True)
class Filters:
    """Which traffic an SLO counts; an empty list means all. `models` applies to evaluated SLIs only."""

    routes: tuple[str, ...] = ()
    upstreams: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeverityAlerting:
    enabled: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SLOAlerting:
    """Alert name, labels and annotations (shared, then per severity). `runbook_url` becomes an annotation."""

    name: str | None = None
    runbook_url: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: SeverityAlerting = field(default_factory=SeverityAlerting)
    ticket: SeverityAlerting = field(default_factory=SeverityAlerting)

    def __post_init__(self) -> None:
        if self.name is not None and not _ALERTNAME.match(self.name):
            raise ValueError(f"alerting.name {self.name!r} is not a valid Prometheus alert name")
        for reserved in ("slo", "severity", "alertname"):
            if reserved in self.labels or reserved in self.page.labels or reserved in self.ticket.labels:
                raise ValueError(f"label {reserved!r} is set by genai-sre and cannot be configured")


@dataclass(frozen=True)
class SLOSpec:
    name: str
    objective: float
    sli: SLISpec
    description: str = ""
    period: str = "30d"
    filters: Filters = field(default_factory=Filters)
    alerting: SLOAlerting = field(default_factory=SLOAlerting)
    min_events: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    selector: str | None = None  # overrides the file's top-level `selector` for this SLO ("" for none)

    def __post_init__(self) -> None:
        if self.selector:
            parse_selector(self.selector)
        if not _NAME.match(self.name):
            raise ValueError(f"SLO name {self.name!r} must be lower-case letters, digits, '-' or '_' (max 63)")
        if not 0 < self.objective < 100:
            raise ValueError(f"objective must be a percentage in (0, 100), got {self.objective}")
        _check_duration("period", self.period)
        if self.min_events is not None and self.min_events < 0:
            raise ValueError("min_events must be >= 0")

    @property
    def period_s(self) -> float:
        return parse_duration(self.period)

    @property
    def error_budget(self) -> float:
        """Allowed error ratio (1 - objective), rounded so the rules and the engine use the same float."""
        return round(1.0 - self.objective / 100.0, 12)

    @property
    def alert_name(self) -> str:
        if self.alerting.name:
            return self.alerting.name
        return "".join(p.capitalize() for p in re.split(r"[-_]", self.name) if p) + "BudgetBurn"


@dataclass(frozen=True)
class AlertWindow:
    """One multiwindow condition: fire when both windows burn faster than the factor.

    factor = budget_percent / 100 * period / long (the Workbook's formula, as Sloth computes it).
    """

    budget_percent: float
    long: str
    short: str

    def __post_init__(self) -> None:
        if not 0 < self.budget_percent <= 100:
            raise ValueError("budget_percent must be in (0, 100]")
        if _check_duration("short", self.short) >= _check_duration("long", self.long):
            raise ValueError(f"short window {self.short} must be shorter than long window {self.long}")

    @property
    def long_s(self) -> float:
        return parse_duration(self.long)

    @property
    def short_s(self) -> float:
        return parse_duration(self.short)

    def factor(self, period_s: float) -> float:
        return round(self.budget_percent * period_s / (100.0 * self.long_s), 10)


_PAGE = (AlertWindow(2, "1h", "5m"), AlertWindow(5, "6h", "30m"))
_TICKET = (AlertWindow(10, "1d", "2h"), AlertWindow(10, "3d", "6h"))


@dataclass(frozen=True)
class AlertWindows:
    """The window catalog; the default is the SRE Workbook's (Sloth's google-30d)."""

    page: tuple[AlertWindow, ...] = _PAGE
    ticket: tuple[AlertWindow, ...] = _TICKET

    def windows_s(self) -> tuple[float, ...]:
        """Every alerting window in seconds, shortest first."""
        out = {w.short_s for w in (*self.page, *self.ticket)} | {w.long_s for w in (*self.page, *self.ticket)}
        return tuple(sorted(out))


@dataclass(frozen=True)
class SelfMonitoring:
    """Alerts about the sidecar itself (generated next to the SLO rules)."""

    enabled: bool = True
    job: str = "genai-sre"
    absent_for: str = "5m"
    capture_drop_ratio: float = 0.01
    detector_error_ratio: float = 0.05
    window: str = "15m"
    alert_after: str = "10m"
    runbook_url: str = ""


_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")


@dataclass(frozen=True)
class Severities:
    """The `severity` label value of each alert tier. kube-prometheus and Grafana use `critical` and `warning`."""

    page: str = "page"
    ticket: str = "ticket"

    def __post_init__(self) -> None:
        for tier, value in (("page", self.page), ("ticket", self.ticket)):
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"severities.{tier}: {value!r} must be 1-63 letters, digits, '_', '.', ':' or '-'")
        if self.page == self.ticket:
            raise ValueError(f"severities: page and ticket must differ, both are {self.page!r}")


@dataclass(frozen=True)
class SLOFile:
    version: Literal["genai-sre/slos/v1"] = "genai-sre/slos/v1"
    service: str = "genai-sre"
    labels: Mapping[str, str] = field(default_factory=dict)
    # PromQL label matchers added to every selector on genai_sre_slo_events_total (one app in a shared Prometheus)
    selector: str = ""
    severities: Severities = field(default_factory=Severities)
    min_events: int = 20
    alert_windows: AlertWindows = field(default_factory=AlertWindows)
    self_monitoring: SelfMonitoring = field(default_factory=SelfMonitoring)
    slos: tuple[SLOSpec, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.slos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"SLO names must be unique, repeated: {', '.join(dupes)}")
        if not _NAME.match(self.service):
            raise ValueError(f"service {self.service!r} must be lower-case letters, digits, '-' or '_'")
        if self.selector:
            parse_selector(self.selector)

    def severity(self, tier: str) -> str:
        """The `severity` label value of tier `page` or `ticket`."""
        return self.severities.page if tier == "page" else self.severities.ticket

    def selector_for(self, slo: SLOSpec) -> str:
        """The SLO's extra matchers, normalised (`app="shop", env=~"prod"`), or ""."""
        text = self.selector if slo.selector is None else slo.selector
        return ", ".join(f"{label}{op}{value}" for label, op, value in parse_selector(text)) if text else ""

    def min_events_for(self, slo: SLOSpec) -> int:
        return self.min_events if slo.min_events is None else slo.min_events

    def sloth_id(self, slo: SLOSpec) -> str:
        return f"{self.service}-{slo.name}"

    def recording_windows_s(self, slo: SLOSpec) -> tuple[float, ...]:
        """Alerting windows plus the period, shortest first."""
        return tuple(sorted({*self.alert_windows.windows_s(), slo.period_s}))

    def get(self, name: str) -> SLOSpec:
        for s in self.slos:
            if s.name == name:
                return s
        raise KeyError(name)


def parse_slos(text: str, source: str = "<slos>", environ: Mapping[str, str] | None = None) -> SLOFile:
    doc = load_document(text, source, environ)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'slos' list")
    return build(SLOFile, doc.data, doc)


def load_slos(path: str | Path, environ: Mapping[str, str] | None = None) -> SLOFile:
    """Read and validate an SLO file; errors name the file, line and key."""
    doc = read_document(path, "SLO file", environ)
    return build(SLOFile, doc.data, doc)
