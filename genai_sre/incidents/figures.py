"""Incident figures: time to detect, acknowledge and resolve; DORA change failure rate.

Definitions (also in docs/incidents.md):

- time to detect = page time − start of the first 5-minute window burning above
  1×. The SLO engine puts that start on the alert as the annotation
  `burn_started_at` (Unix seconds); without it the figure is unknown. Page
  time is the `startsAt` of the earliest page alert of the incident.
- time to acknowledge = first acknowledgement − incident opened.
- time to resolve = incident resolved − incident opened.
- A deploy marker (annotation kind `deploy`, labels `model`, `version`) is a
  failed deployment when a page incident for that model opens within
  `window_s` (1 h) after it. An incident whose labels carry no `model` counts
  against every model deployed in that hour. Change failure rate = failed /
  deploys per model; failed-deployment recovery time = incident resolved −
  deploy marker, averaged over the failed deploys that recovered.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from genai_sre.events import Annotation, Incident

__all__ = [
    "DeployOutcome",
    "IncidentFigures",
    "ModelFigures",
    "Summary",
    "deploy_outcomes",
    "incident_figures",
    "model_figures",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    incident_id: str
    time_to_detect_s: float | None
    time_to_ack_s: float | None
    time_to_resolve_s: float | None


def incident_figures(incident: Incident, paged_at: float | None) -> IncidentFigures:
    ttd = None
    if paged_at is not None and incident.detected_burn_start_at is not None:
        ttd = max(0.0, paged_at - incident.detected_burn_start_at)
    tta = incident.acknowledged_at - incident.opened_at if incident.acknowledged_at is not None else None
    ttr = incident.resolved_at - incident.opened_at if incident.resolved_at is not None else None
    return IncidentFigures(incident.id, ttd, tta, ttr)


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    model: str
    version: str
    at: float
    failed_by: str | None
    recovery_s: float | None


def deploy_outcomes(
    deploys: Iterable[Annotation], incidents: Sequence[Incident], window_s: float = 3600.0
) -> list[DeployOutcome]:
    out = []
    for d in sorted(deploys, key=lambda a: a.at):
        model = d.labels.get("model", "")
        version = d.labels.get("version", "")
        culprit = None
        for inc in sorted(incidents, key=lambda i: i.opened_at):
            if d.at <= inc.opened_at <= d.at + window_s and inc.labels.get("model", "") in ("", model):
                culprit = inc
                break
        recovery = None
        if culprit is not None and culprit.resolved_at is not None:
            recovery = culprit.resolved_at - d.at
        out.append(DeployOutcome(model, version, d.at, culprit.id if culprit else None, recovery))
    return out


@dataclass(frozen=True, slots=True)
class ModelFigures:
    model: str
    deploys: int
    failed: int
    change_failure_rate: float
    failed_versions: tuple[str, ...]
    recovery_s: float | None


def model_figures(outcomes: Sequence[DeployOutcome]) -> list[ModelFigures]:
    out = []
    for model in sorted({o.model for o in outcomes}):
        mine = [o for o in outcomes if o.model == model]
        failed = [o for o in mine if o.failed_by]
        recoveries = [o.recovery_s for o in failed if o.recovery_s is not None]
        out.append(
            ModelFigures(
                model=model,
                deploys=len(mine),
                failed=len(failed),
                change_failure_rate=len(failed) / len(mine),
                failed_versions=tuple(o.version for o in failed),
                recovery_s=statistics.fmean(recoveries) if recoveries else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Summary:
    incidents: int
    open: int
    acknowledged: int
    resolved: int
    mean_time_to_detect_s: float | None
    mean_time_to_ack_s: float | None
    mean_time_to_resolve_s: float | None
    models: tuple[ModelFigures, ...]


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def summarize(pairs: Sequence[tuple[Incident, float | None]], deploys: Sequence[Annotation]) -> Summary:
    figs = [incident_figures(i, p) for i, p in pairs]
    incidents = [i for i, _ in pairs]
    return Summary(
        incidents=len(incidents),
        open=sum(1 for i in incidents if i.status == "open"),
        acknowledged=sum(1 for i in incidents if i.status == "acknowledged"),
        resolved=sum(1 for i in incidents if i.status == "resolved"),
        mean_time_to_detect_s=_mean(f.time_to_detect_s for f in figs),
        mean_time_to_ack_s=_mean(f.time_to_ack_s for f in figs),
        mean_time_to_resolve_s=_mean(f.time_to_resolve_s for f in figs),
        models=tuple(model_figures(deploy_outcomes(deploys, incidents))),
    )
