"""A blameless postmortem draft in Markdown, following the SRE Book's template.

Sections (SRE Book, Appendix D): summary, impact, detection, trigger,
contributing factors, resolution, action items, lessons learned, timeline,
supporting information. Everything that can be filled from data is: the SLOs
affected and the error budget consumed, requests affected, the alert that
detected the incident and how fast, deploy markers near its start, the top
detector explanations among the bad exchanges with redacted samples, and the
timeline. No person is named: the draft speaks of systems, alerts and
changes. Sections that need a human say so in a line starting with
`_Needs a human:_`.

Evidence comes through `EvidenceSource`, a small protocol the evidence store
(redacted samples with their findings) implements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from genai_sre.alerting.notification import group_key_hash, parse_fraction
from genai_sre.events import Incident, TimelineEvent, status_text
from genai_sre.incidents.figures import incident_figures
from genai_sre.incidents.service import DEPLOY_LOOKBACK_S, IncidentService

__all__ = ["EvidenceSource", "render_postmortem", "write_postmortem"]

HUMAN = "_Needs a human:_"


class EvidenceSource(Protocol):
    """What the postmortem asks of the evidence store.

    `samples(start, end, limit, slo=None)` returns bad exchanges in [start, end],
    newest first, already redacted; with `slo`, only the exchanges that SLO
    counted as bad events. Each is a mapping with keys `id`, `at` (Unix s),
    `status` (HTTP status), `error` (transport failure, or None), `model`,
    `route`, `question`, `answer` and `findings`: a list of mappings with
    `detector`, `name`, `score`, `label`, `explanation` and `features` (a list
    of `[feature, shap_value]` pairs).

    Optionally, `slo_figures(slo, start, end)` returns, for one SLO over [start, end],
    from the engine that raised the alerts: `objective` (e.g. 0.999), `total`
    and `bad` events, `budget_consumed` (fraction of the period's error budget
    spent in the interval), `budget_remaining` (fraction left at `end`),
    `peak_burn_rate` (over `window`, the window of the alerts' `burn_rate`);
    or None when it knows nothing. Missing keys are shown as unknown.
    """

    def samples(
        self, start: float, end: float, limit: int, *, slo: str | None = None
    ) -> Sequence[Mapping[str, Any]]: ...


def _ts(epoch: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "unknown" if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).strftime(fmt) + " UTC"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _pct(value: Any) -> str:
    """A share for people: `12.3%`, `0.25%`, `1,668%`."""
    fraction = value if isinstance(value, (int, float)) else parse_fraction(value)
    if fraction is None:
        return "unknown"
    p = fraction * 100
    if abs(p) >= 100:
        return f"{p:,.0f}%"
    return f"{p:.1f}%" if abs(p) >= 10 else f"{p:.2f}%"


def _objective(value: Any) -> str:
    return f"{float(value) * 100:.6g}%" if _isnum(value) else "unknown"


def _burn(value: Any) -> str:
    """A burn rate for people: `2.4x`, `27.7x`, `101x`."""
    if not _isnum(value):
        return "unknown"
    x = float(value)
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


def _count(value: Any) -> str:
    return f"{int(float(value)):,}" if _isnum(value) else "unknown"


def _status(sample: Mapping[str, Any]) -> str:
    """`status=503`, or `status=error (timeout)` for a transport failure."""
    status = _num(sample.get("status"))
    return status_text(int(status) if status is not None else None, sample.get("error"))


def _statuses(samples: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for s in samples:
        counts[_status(s)] += 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _top_explanations(samples: Sequence[Mapping[str, Any]], limit: int = 5) -> list[str]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    features: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    explanations: dict[tuple[str, str], str] = {}
    from genai_sre.storage.samples import BAD_LABELS

    for sample in samples:
        for f in sample.get("findings", ()) or ():
            if f.get("label") not in BAD_LABELS:
                continue  # a passing finding on a bad exchange explains nothing
            key = (str(f.get("detector", "")), str(f.get("name", "")))
            counts[key] += 1
            if isinstance(f.get("score"), (int, float)):
                scores[key].append(float(f["score"]))
            for pair in f.get("features", ()) or ():
                if len(pair) == 2 and isinstance(pair[1], (int, float)):
                    features[key][str(pair[0])] += abs(float(pair[1]))
            if f.get("explanation") and key not in explanations:
                explanations[key] = str(f["explanation"])
    lines = []
    for key in sorted(counts, key=lambda k: -counts[k])[:limit]:
        mean = f", mean score {sum(scores[key]) / len(scores[key]):.3g}" if scores[key] else ""
        top = sorted(features[key].items(), key=lambda kv: -kv[1])[:3]
        feat = f"; top features (sum |SHAP|): {', '.join(f'`{n}` {v:.2f}' for n, v in top)}" if top else ""
        why = f' e.g. "{explanations[key][:200]}"' if key in explanations else ""
        lines.append(f"- `{key[0]}/{key[1]}`: {counts[key]} of {len(samples)} bad exchanges{mean}{feat}.{why}")
    return lines


def _clip(text: Any, n: int = 300) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def render_postmortem(
    service: IncidentService, incident_id: str, evidence: EvidenceSource | None = None, sample_limit: int = 200
) -> str:
    incident = service.get(incident_id)
    if incident is None:
        raise KeyError(f"no incident {incident_id!r}")
    timeline = service.timeline(incident.id)
    alerts = service.store.alerts(incident.id)
    figs = incident_figures(incident, service.store.paged_at(incident.id))
    start = incident.detected_burn_start_at or min([a["starts_at"] for a in alerts] or [incident.opened_at])
    end = incident.resolved_at if incident.resolved_at is not None else service.clock()
    slos = sorted({str(a["labels"].get("slo")) for a in alerts if a["labels"].get("slo")})
    page_values = service.page_severities
    pages = [a for a in alerts if a["labels"].get("severity") in page_values] or alerts
    first = min(pages, key=lambda a: a["starts_at"]) if pages else None
    facts = {slo: _slo_facts(slo, alerts, page_values, evidence, start, end, sample_limit) for slo in slos}
    if slos:  # the samples of an SLO's incident: the exchanges that SLO counted as bad events
        seen: dict[str, Mapping[str, Any]] = {}
        for fact in facts.values():
            seen.update((str(x.get("id")), x) for x in fact.samples)
        samples = sorted(seen.values(), key=lambda x: -(_num(x.get("at")) or 0.0))[:sample_limit]
    else:
        samples = list(evidence.samples(start, end, sample_limit)) if evidence is not None else []
    window = next((fact.window for fact in facts.values() if fact.window), None)
    window_text = f"{window} window" if window else "shortest alert window"
    out: list[str] = []
    w = out.append

    w(f"# Postmortem: {incident.title} (incident {incident.id})")
    w("")
    w(
        f"Date: {_ts(incident.opened_at, '%Y-%m-%d')} · Authors: genai-sre (draft), reviewers to be added"
        " · Status: Draft"
    )
    w(f"Severity: {incident.severity} · Incident status: {incident.status}")
    w("")
    w(
        "This draft is blameless: it describes systems, signals and changes, not people. "
        "Quoted notes are reproduced as written."
    )
    w("")
    w("## Summary")
    w("")
    state = f"resolved after {_dur(figs.time_to_resolve_s)}" if incident.resolved_at else "still open"
    w(
        f"Error budget of the {', '.join(f'`{s}`' for s in slos) or 'affected'} SLO(s) burned from "
        f"{_ts(start)} to {_ts(end) if incident.resolved_at else 'now'} ({_dur(end - start)}). "
        f"A burn-rate alert opened the incident at {_ts(incident.opened_at)}; it is {state}."
    )
    w("")
    w(f"{HUMAN} one or two sentences on what users experienced.")
    w("")
    w("## Impact")
    w("")
    for slo in slos:
        fact = facts[slo]
        figs_slo = fact.figures
        if figs_slo:
            w(
                f"- SLO `{slo}`: objective {_objective(figs_slo.get('objective'))}; requests affected "
                f"{_count(figs_slo.get('bad'))} of {_count(figs_slo.get('total'))} (bad events from the start of the "
                f"burn to {'its end' if incident.resolved_at else 'now'}); error budget consumed "
                f"{_pct(figs_slo.get('budget_consumed'))} of the period's, remaining "
                f"{_pct(figs_slo.get('budget_remaining'))}; burn rate at page time {_burn(fact.page_burn)}, peak "
                f"{_burn(fact.peak_burn)} (over {fact.window or 'the shortest alert'} windows)."
            )
        else:
            w(
                f"- SLO `{slo}`: burn rate at page time {_burn(fact.page_burn)}, peak reported by its alerts "
                f"{_burn(fact.peak_burn)}; budget remaining at page time {_pct(fact.page_budget)}; requests "
                "affected: not measured here."
            )
        if fact.samples:
            models = sorted({str(x.get("model")) for x in fact.samples if x.get("model")})
            routes = sorted({str(x.get("route")) for x in fact.samples if x.get("route")})
            w(
                f"- Bad events of `{slo}` sampled: {len(fact.samples)}"
                f"{' (limit reached)' if len(fact.samples) >= sample_limit else ''}; {_statuses(fact.samples)}; "
                f"models: {', '.join(models) or 'unknown'}; routes: {', '.join(routes) or 'unknown'}."
            )
    if not slos:
        w("- No alert of the incident names an SLO.")
        if samples:
            w(f"- Bad exchanges sampled in the interval: {len(samples)}; {_statuses(samples)}.")
    w(f"- {HUMAN} user-visible symptoms, affected tenants or products, revenue impact.")
    w("")
    w("## Detection")
    w("")
    if first is not None:
        labels = first["labels"]
        ann = first["annotations"]
        w(
            f"- Alert `{labels.get('alertname', '?')}` (severity={labels.get('severity', '?')}, "
            f"slo={labels.get('slo', '?')}) fired at {_ts(first['starts_at'])}."
        )
        if _isnum(ann.get("burn_rate")):
            w(
                f"- Burn rate at page time: {_burn(ann['burn_rate'])} over the {window_text}; error budget "
                f"remaining then: {_pct(ann.get('budget_remaining'))}."
            )
    w(
        f"- First {window_text} burning above 1x began at {_ts(incident.detected_burn_start_at)}; "
        f"time to detect: {_dur(figs.time_to_detect_s)}."
    )
    w(f"- Time to acknowledge: {_dur(figs.time_to_ack_s)}.")
    w(f"- Group key: `{incident.group_key}`; PagerDuty dedup_key: `{group_key_hash(incident.group_key)}`.")
    w("")
    w("## Trigger")
    w("")
    nearby = [e for e in timeline if e.kind == "deploy" and start - DEPLOY_LOOKBACK_S <= e.at <= end]
    if nearby:
        w("Changes recorded from an hour before the burn began to its end (candidates, not conclusions):")
        w("")
        for e in nearby:
            w(f"- {_ts(e.at)}: deploy {e.text}")
    else:
        w("No deploy marker was recorded in the hour before the burn began.")
    w("")
    w(f"{HUMAN} confirm what set the incident off (deploy, model or prompt change, upstream incident, traffic).")
    w("")
    w("## Contributing factors")
    w("")
    top = _top_explanations(samples)
    if samples:
        w(f"Outcome of the {len(samples)} bad exchanges sampled: {_statuses(samples)}.")
        w("")
    if top:
        w("Most frequent failing detector findings among them:")
        w("")
        out.extend(top)
    else:
        w("No detector evidence was available for the interval.")
    w("")
    w(f"{HUMAN} the systems and conditions that allowed this (5 whys). Describe causes, not culprits.")
    w("")
    w("## Resolution")
    w("")
    mitigations = [e for e in timeline if e.kind == "mitigation"]
    for e in mitigations:
        automated = e.data.get("source") == "genai-sre"  # the sidecar's own fail-overs and fail-backs
        text = e.text
        if automated:  # the timeline puts the labels first; here the sentence says it all
            text = text.removeprefix(" ".join(f"{k}={v}" for k, v in sorted(e.data.items()))).strip()
        w(f"- {_ts(e.at)} {'automated mitigation (genai-sre)' if automated else 'mitigation'}: {text}")
    resolved = [e for e in timeline if e.kind == "resolved"]
    if resolved:
        w(f"- {_ts(resolved[-1].at)} resolved: {resolved[-1].text} (time to resolve {_dur(figs.time_to_resolve_s)}).")
    if not mitigations and not resolved:
        w("- Not resolved yet.")
    w("")
    w(f"{HUMAN} the steps that mitigated and fixed the problem.")
    w("")
    w("## Action items")
    w("")
    w("| Action | Type (prevent/mitigate/process/detect) | Owner | Tracking | Status |")
    w("| --- | --- | --- | --- | --- |")
    for e in timeline:
        if e.kind == "action_item":
            w(f"| {_clip(e.text, 200)} | to classify | to assign | | TODO |")
    w("| _Needs a human_ | | | | |")
    w("")
    w("## Lessons learned")
    w("")
    w("### What went well")
    w("")
    if figs.time_to_detect_s is not None:
        w(f"- An automatic burn-rate alert detected the problem {_dur(figs.time_to_detect_s)} after the burn began.")
    w(f"- {HUMAN}")
    w("")
    w("### What went wrong")
    w("")
    w(f"- {HUMAN}")
    w("")
    w("### Where we got lucky")
    w("")
    w(f"- {HUMAN}")
    w("")
    w("## Timeline (UTC)")
    w("")
    out.extend(_timeline_lines(incident, timeline, window_text))
    w("")
    w("## Supporting information")
    w("")
    links = set()
    for a in alerts:
        for key in ("dashboard_url", "runbook_url"):
            if a["annotations"].get(key):
                links.add(f"- {key.replace('_url', '').capitalize()}: {a['annotations'][key]}")
    out.extend(sorted(links) or ["- No dashboard or runbook links were set on the alerts."])
    if samples:
        w("")
        w(
            "Redacted samples of the bad events"
            + (f" of {', '.join(f'`{x}`' for x in slos)}" if slos else " (bad exchanges)")
            + ":"
        )
        for sample in samples[:5]:
            counted = [x for x in sample.get("slos") or () if x in slos]
            w("")
            w(
                f"- `{sample.get('id', '?')}` at {_ts(_num(sample.get('at')))} {_status(sample)} "
                f"model={sample.get('model', '?')} route={sample.get('route', '?')}"
                + (f"; bad for {', '.join(counted)}" if counted else "")
            )
            if sample.get("question") is not None:
                w(f"  - question: {_clip(sample.get('question'))}")
                w(f"  - answer: {_clip(sample.get('answer'))}")
            for finding in _relevant_findings(sample.get("findings") or ())[:3]:
                score = finding.get("score")
                w(
                    f"  - {finding.get('detector', '?')}/{finding.get('name', '?')}: score "
                    f"{f'{score:.3g}' if isinstance(score, (int, float)) else '?'}, "
                    f"label {finding.get('label', '?')}; {_clip(finding.get('explanation'), 160)}"
                )
    w("")
    return "\n".join(out)


@dataclass(frozen=True)
class _SLOFacts:
    """What the draft says about one SLO, all from its alerts and the engine that raised them."""

    page_burn: float | None  # the `burn_rate` of its first page (or first alert) when it fired
    page_budget: str | None  # the `budget_remaining` annotation then
    peak_burn: float | None  # the largest burn rate over the alerts' window in the interval
    window: str | None  # that window (`5m`)
    figures: Mapping[str, Any] | None
    samples: Sequence[Mapping[str, Any]]


def _slo_facts(
    slo: str,
    alerts: Sequence[Mapping[str, Any]],
    page_values: Sequence[str],
    evidence: EvidenceSource | None,
    start: float,
    end: float,
    limit: int,
) -> _SLOFacts:
    mine = sorted((a for a in alerts if a["labels"].get("slo") == slo), key=lambda a: a["starts_at"])
    pages = [a for a in mine if a["labels"].get("severity") in page_values] or mine
    first = pages[0]["annotations"] if pages else {}
    page_burn = _num(first.get("burn_rate"))
    reported = [v for v in (_num(a["annotations"].get("burn_rate")) for a in mine) if v is not None]
    slo_figures = getattr(evidence, "slo_figures", None)
    figures = slo_figures(slo, start, end) if callable(slo_figures) else None
    peak_values = [*reported, *([float(figures["peak_burn_rate"])] if figures and
                                _isnum(figures.get("peak_burn_rate")) else [])]
    samples = list(evidence.samples(start, end, limit, slo=slo)) if evidence is not None else []
    return _SLOFacts(
        page_burn=page_burn,
        page_budget=first.get("budget_remaining"),
        peak_burn=max(peak_values) if peak_values else None,
        window=str(figures["window"]) if figures and figures.get("window") else None,
        figures=figures,
        samples=samples,
    )


def _relevant_findings(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A sample's findings, those with a bad label first (`flagged`, `slow`, ...)."""
    from genai_sre.storage.samples import BAD_LABELS

    return sorted(findings, key=lambda f: f.get("label") not in BAD_LABELS)


def _isnum(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _num(value: Any) -> float | None:
    return float(value) if _isnum(value) else None


def _timeline_lines(
    incident: Incident, events: Sequence[TimelineEvent], window_text: str = "shortest alert window"
) -> list[str]:
    rows: list[tuple[float, str]] = []
    if incident.detected_burn_start_at is not None:
        rows.append((incident.detected_burn_start_at, f"DEGRADATION BEGINS (first {window_text} burning above 1x)"))
    marks = {"opened": "INCIDENT BEGINS", "resolved": "INCIDENT ENDS"}
    mitigated = False
    for e in events:
        label = marks.get(e.kind, "")
        if e.kind == "mitigation" and not mitigated:
            label, mitigated = "MITIGATED", True
        prefix = f"{label}: " if label else ""
        rows.append((e.at, f"{prefix}{e.kind.replace('_', ' ')}: {_clip(e.text, 240)}"))
    rows.sort(key=lambda r: r[0])
    return [f"- {_ts(at, '%Y-%m-%d %H:%M:%S')} {text}" for at, text in rows]


def write_postmortem(
    service: IncidentService,
    incident_id: str,
    path: str | Path | None = None,
    evidence: EvidenceSource | None = None,
) -> Path:
    """Write the draft to `path` (default: `<data dir>/postmortems/incident-<id>.md`) and return the path."""
    text = render_postmortem(service, incident_id, evidence)
    target = Path(path) if path is not None else service.store.data_dir / "postmortems" / f"incident-{incident_id}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
