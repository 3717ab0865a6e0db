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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from genai_sre.alerting.notification import group_key_hash, parse_fraction
from genai_sre.events import Incident, TimelineEvent
from genai_sre.incidents.figures import incident_figures
from genai_sre.incidents.service import DEPLOY_LOOKBACK_S, IncidentService

__all__ = ["EvidenceSource", "render_postmortem", "write_postmortem"]

HUMAN = "_Needs a human:_"


class EvidenceSource(Protocol):
    """What the postmortem asks of the evidence store.

    `samples(start, end, limit)` returns bad exchanges in [start, end], newest
    first, already redacted, each a mapping with keys `id`, `at` (Unix s),
    `model`, `route`, `question`, `answer` and `findings`: a list of mappings
    with `detector`, `name`, `score`, `label`, `explanation` and `features`
    (a list of `[feature, shap_value]` pairs).

    Optionally, `slo_figures(slo, start, end)` returns, for one SLO over [start, end],
    `objective` (e.g. 0.999), `total` and `bad` events, `budget_consumed`
    (fraction of the period's error budget spent in the interval),
    `budget_remaining` (fraction left at `end`), `peak_burn_rate`; or None
    when it knows nothing. Missing keys are shown as unknown.
    """

    def samples(self, start: float, end: float, limit: int) -> Sequence[Mapping[str, Any]]: ...


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
    fraction = value if isinstance(value, (int, float)) else parse_fraction(value)
    return "unknown" if fraction is None else f"{fraction * 100:.2f}%"


def _top_explanations(samples: Sequence[Mapping[str, Any]], limit: int = 5) -> list[str]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    features: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    explanations: dict[tuple[str, str], str] = {}
    for sample in samples:
        for f in sample.get("findings", ()) or ():
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
        mean = f", mean score {sum(scores[key]) / len(scores[key]):.2f}" if scores[key] else ""
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
    pages = [a for a in alerts if a["labels"].get("severity") == "page"] or alerts
    first = min(pages, key=lambda a: a["starts_at"]) if pages else None
    samples = list(evidence.samples(start, end, sample_limit)) if evidence is not None else []
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
    for slo in slos or ["(no slo label)"]:
        slo_alerts = [a for a in alerts if a["labels"].get("slo") == slo]
        slo_figures = getattr(evidence, "slo_figures", None)
        figs_slo = slo_figures(slo, start, end) if callable(slo_figures) and slos else None
        ann = slo_alerts[-1]["annotations"] if slo_alerts else {}
        burn = max(
            (float(a["annotations"]["burn_rate"]) for a in slo_alerts if _isnum(a["annotations"].get("burn_rate"))),
            default=None,
        )
        if figs_slo:
            total, bad = figs_slo.get("total"), figs_slo.get("bad")
            w(
                f"- SLO `{slo}`: objective {_pct(figs_slo.get('objective'))}; budget consumed during the incident "
                f"{_pct(figs_slo.get('budget_consumed'))}; remaining {_pct(figs_slo.get('budget_remaining'))}; "
                f"requests affected {'unknown' if bad is None else bad} of {'unknown' if total is None else total}; "
                f"peak burn rate {figs_slo.get('peak_burn_rate', burn if burn is not None else 'unknown')}x."
            )
        else:
            w(
                f"- SLO `{slo}`: peak burn rate {burn if burn is not None else 'unknown'}x; budget remaining at alert "
                f"time {_pct(ann.get('budget_remaining'))}; requests affected: not measured here."
            )
    if samples:
        models = sorted({str(s.get("model")) for s in samples if s.get("model")})
        routes = sorted({str(s.get("route")) for s in samples if s.get("route")})
        w(
            f"- Bad exchanges sampled in the interval: {len(samples)}"
            f"{' (limit reached)' if len(samples) >= sample_limit else ''}; models: {', '.join(models) or 'unknown'}; "
            f"routes: {', '.join(routes) or 'unknown'}."
        )
    w(f"- {HUMAN} user-visible symptoms, affected tenants or products, revenue impact.")
    w("")
    w("## Detection")
    w("")
    if first is not None:
        labels = first["labels"]
        w(
            f"- Alert `{labels.get('alertname', '?')}` (severity={labels.get('severity', '?')}, "
            f"slo={labels.get('slo', '?')}) fired at {_ts(first['starts_at'])}."
        )
        if first["annotations"].get("burn_rate"):
            w(f"- Burn rate at page time: {first['annotations']['burn_rate']}x.")
    w(
        f"- First 5-minute window burning above 1x began at {_ts(incident.detected_burn_start_at)}; "
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
    if top:
        w("Most frequent detector findings among the bad exchanges:")
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
    out.extend(_timeline_lines(incident, timeline))
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
        w("Redacted samples of bad exchanges:")
        for s in samples[:5]:
            w("")
            w(
                f"- `{s.get('id', '?')}` at {_ts(_num(s.get('at')))} "
                f"model={s.get('model', '?')} route={s.get('route', '?')}"
            )
            w(f"  - question: {_clip(s.get('question'))}")
            w(f"  - answer: {_clip(s.get('answer'))}")
            for f in (s.get("findings") or ())[:3]:
                w(
                    f"  - {f.get('detector', '?')}/{f.get('name', '?')}: score {f.get('score', '?')}, "
                    f"label {f.get('label', '?')}; {_clip(f.get('explanation'), 160)}"
                )
    w("")
    return "\n".join(out)


def _isnum(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _num(value: Any) -> float | None:
    return float(value) if _isnum(value) else None


def _timeline_lines(incident: Incident, events: Sequence[TimelineEvent]) -> list[str]:
    rows: list[tuple[float, str]] = []
    if incident.detected_burn_start_at is not None:
        rows.append((incident.detected_burn_start_at, "DEGRADATION BEGINS (first 5-minute window burning above 1x)"))
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
