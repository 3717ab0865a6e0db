"""Prometheus rules for the SLOs in an `SLOFile`, in Sloth's layout.

Everything is computed from one counter, `genai_sre_slo_events_total{slo,outcome}`,
summed across every sidecar that exports it (and matches the file's `selector`,
or the SLO's own):

- `slo:sli_error:ratio_rate<window>` for every alerting window and the period,
  as `sum(rate(bad[w])) / sum(rate(all[w]))`: the period ratio is traffic-weighted,
  exactly as the in-process engine computes it (not Sloth's average of 5m ratios);
- Sloth's meta recordings (`slo:objective:ratio`, `slo:error_budget:ratio`,
  `slo:time_period:days`, `slo:current_burn_rate:ratio`,
  `slo:period_burn_rate:ratio`, `slo:period_error_budget_remaining:ratio`)
  and `sloth_slo_info`, with `sloth_id`/`sloth_service`/`sloth_slo`/`sloth_window`
  labels, so Sloth's Grafana dashboards work unchanged;
- one alert per SLO and tier (`page`, `ticket`; the `severity` label value is
  `severities.page` / `severities.ticket`, `sloth_severity` the tier), no `for:`, each a union
  of multiwindow conditions, each guarded by a minimum event count per window;
- self-monitoring alerts: the sidecar down or absent, capture drops, detector errors.

The label set of every alert equals the one `engine.alert_labels()` builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from genai_sre import __version__
from genai_sre.slo.burn_rate import conditions
from genai_sre.slo.engine import alert_annotations
from genai_sre.slo.spec import SLOFile, SLOSpec, format_duration

__all__ = ["METRIC", "Format", "render", "rule_groups", "write"]

METRIC = "genai_sre_slo_events_total"
Format = Literal["rules", "prometheusrule"]


def _num(x: float) -> str:
    x = round(x, 10)
    return str(int(x)) if x.is_integer() else repr(x)


def _sloth_sel(slos: SLOFile, slo: SLOSpec) -> str:
    return f'sloth_id="{slos.sloth_id(slo)}", sloth_service="{slos.service}", sloth_slo="{slo.name}"'


def _base_labels(slos: SLOFile, slo: SLOSpec) -> dict[str, str]:
    return {
        **slos.labels,
        **slo.labels,
        "slo": slo.name,
        "sloth_id": slos.sloth_id(slo),
        "sloth_service": slos.service,
        "sloth_slo": slo.name,
    }


def _sli_group(slos: SLOFile, slo: SLOSpec) -> dict[str, Any]:
    sel = _sloth_sel(slos, slo)
    extra = slos.selector_for(slo)
    events_sel = f'slo="{slo.name}"' + (f", {extra}" if extra else "")
    rules = []
    for w_s in slos.recording_windows_s(slo):
        w = format_duration(w_s)
        labels = {**_base_labels(slos, slo), "sloth_window": w}
        events = f"slo:sli_events:rate{w}{{{sel}}}"
        bad = f'slo:sli_events:rate{w}{{{sel}, outcome="bad"}}'
        # One pass over the raw counter per window, by outcome; the ratio (the next rule: rules of a
        # group run in order) and the alerts' low-traffic guard read it. `or ... 0 *` keeps the ratio
        # at 0, not absent, before the first bad event ever.
        rules.append(
            {
                "record": f"slo:sli_events:rate{w}",
                "expr": f"sum by (slo, outcome) (rate({METRIC}{{{events_sel}}}[{w}]))",
                "labels": dict(labels),
            }
        )
        rules.append(
            {
                "record": f"slo:sli_error:ratio_rate{w}",
                "expr": (
                    f"(sum by (slo) ({bad})\n  or on (slo) 0 * sum by (slo) ({events}))\n"
                    f"/ on (slo) sum by (slo) ({events})\n"
                ),
                "labels": dict(labels),
            }
        )
    return {"name": f"sloth-slo-sli-recordings-{slos.sloth_id(slo)}", "rules": rules}


def _meta_group(slos: SLOFile, slo: SLOSpec) -> dict[str, Any]:
    labels = _base_labels(slos, slo)
    sel = _sloth_sel(slos, slo)
    short = format_duration(slos.recording_windows_s(slo)[0])
    period = format_duration(slo.period_s)
    on = "on (sloth_id, sloth_slo, sloth_service) group_left"
    rules: list[dict[str, Any]] = [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective / 100)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({_num(slo.error_budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({_num(slo.period_s / 86400)})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{short}{{{sel}}}\n/ {on}\nslo:error_budget:ratio{{{sel}}}\n",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period}{{{sel}}}\n/ {on}\nslo:error_budget:ratio{{{sel}}}\n",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{{{sel}}}",
            "labels": labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **labels,
                "sloth_mode": "cli-gen-prom",
                "sloth_objective": _num(slo.objective),
                "sloth_spec": "prometheus/v1",
                "sloth_version": f"genai-sre-{__version__}",
            },
        },
    ]
    return {"name": f"sloth-slo-meta-recordings-{slos.sloth_id(slo)}", "rules": rules}


def _alert_expr(slos: SLOFile, slo: SLOSpec, severity: str) -> str | None:
    sel = _sloth_sel(slos, slo)
    budget = _num(slo.error_budget)
    min_events = slos.min_events_for(slo)
    parts = []
    for cond in conditions(slos.alert_windows, slo.period_s):
        if cond.severity != severity:
            continue
        lines = []
        for w_s in (cond.short_s, cond.long_s):
            w = format_duration(w_s)
            lines.append(
                f"max(slo:sli_error:ratio_rate{w}{{{sel}}} > ({_num(cond.factor)} * {budget})) without (sloth_window)"
            )
        clause = "\n    and\n    ".join(lines)
        if min_events > 0:
            for w_s in (cond.short_s, cond.long_s):
                w = format_duration(w_s)
                clause += (
                    f"\n    and on (slo)\n    sum by (slo) (slo:sli_events:rate{w}{{{sel}}})"
                    f" * {_num(w_s)} >= {min_events}"
                )
        parts.append(f"(\n    {clause}\n)")
    return "\nor\n".join(parts) + "\n" if parts else None


_VALUE_ANNOTATIONS = {
    "burn_rate": (
        '{{ with printf "slo:current_burn_rate:ratio{sloth_id=\\"%s\\"}" $labels.sloth_id | query }}'
        '{{ . | first | value | printf "%.2f" }}{{ end }}'
    ),
    "budget_remaining": (
        '{{ with printf "slo:period_error_budget_remaining:ratio{sloth_id=\\"%s\\"}" $labels.sloth_id | query }}'
        "{{ . | first | value | humanizePercentage }}{{ end }}"
    ),
}


def _alert_group(slos: SLOFile, slo: SLOSpec) -> dict[str, Any] | None:
    rules = []
    for severity in ("page", "ticket"):
        sev = slo.alerting.page if severity == "page" else slo.alerting.ticket
        expr = _alert_expr(slos, slo, severity)
        if not sev.enabled or expr is None:
            continue
        # The series bring the base labels; the rule adds the rest (the same set engine.alert_labels builds).
        rule_labels = {
            **slo.alerting.labels, **sev.labels, "severity": slos.severity(severity), "sloth_severity": severity
        }
        annotations = {**alert_annotations(slos, slo, severity), **_VALUE_ANNOTATIONS}  # type: ignore[arg-type]
        rules.append({"alert": slo.alert_name, "expr": expr, "labels": rule_labels, "annotations": annotations})
    if not rules:
        return None
    return {"name": f"sloth-slo-alerts-{slos.sloth_id(slo)}", "rules": rules}


def _self_group(slos: SLOFile) -> dict[str, Any]:
    sm = slos.self_monitoring
    job = f'job="{sm.job}"'
    by = "sum by (job, instance"
    base = {"component": "genai-sre", **slos.labels}
    ann = {"runbook_url": sm.runbook_url} if sm.runbook_url else {}
    dropped = f"{by}) (rate(genai_sre_pipeline_dropped_total{{{job}}}[{sm.window}]))"
    captured = f"{by}) (rate(genai_sre_pipeline_captures_total{{{job}}}[{sm.window}]))"
    failed = f'{by}, detector) (rate(genai_sre_detector_runs_total{{{job}, outcome=~"failed|timeout"}}[{sm.window}]))'
    runs = f"{by}, detector) (rate(genai_sre_detector_runs_total{{{job}}}[{sm.window}]))"
    rules = [
        {
            "alert": "GenAISRESidecarDown",
            "expr": f"up{{{job}}} == 0",
            "for": sm.absent_for,
            "labels": {**base, "severity": slos.severity("page")},
            "annotations": {**ann, "summary": "genai-sre sidecar {{ $labels.instance }} is down: SLIs are not counted"},
        },
        {
            "alert": "GenAISRESidecarAbsent",
            "expr": f"absent(up{{{job}}})",
            "for": sm.absent_for,
            "labels": {**base, "severity": slos.severity("page")},
            "annotations": {**ann, "summary": f"no genai-sre sidecar (job {sm.job}) is scraped: SLOs are blind"},
        },
        {
            "alert": "GenAISRECaptureDrops",
            "expr": f"{dropped}\n/ {captured}\n> {_num(sm.capture_drop_ratio)}\n",
            "for": sm.alert_after,
            "labels": {**base, "severity": slos.severity("ticket")},
            "annotations": {
                **ann,
                "summary": "genai-sre {{ $labels.instance }} drops {{ $value | humanizePercentage }} of captures",
            },
        },
        {
            "alert": "GenAISREDetectorErrors",
            "expr": f"{failed}\n/ {runs}\n> {_num(sm.detector_error_ratio)}\n",
            "for": sm.alert_after,
            "labels": {**base, "severity": slos.severity("ticket")},
            "annotations": {
                **ann,
                "summary": "detector {{ $labels.detector }} fails or times out on {{ $value | humanizePercentage }}"
                " of runs",
            },
        },
    ]
    return {"name": "genai-sre-self-monitoring", "rules": rules}


def rule_groups(slos: SLOFile) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for slo in slos.slos:
        groups.append(_sli_group(slos, slo))
        groups.append(_meta_group(slos, slo))
        alerts = _alert_group(slos, slo)
        if alerts is not None:
            groups.append(alerts)
    if slos.self_monitoring.enabled:
        groups.append(_self_group(slos))
    return groups


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)

_HEADER = "# Generated by `genai-sre rules` from {source}. Do not edit: regenerate.\n"


def render(slos: SLOFile, fmt: Format = "rules", source: str = "the SLO file", name: str = "genai-sre-slos") -> str:
    """The rule file (`rules`) or a prometheus-operator `PrometheusRule` manifest, as YAML text."""
    groups = rule_groups(slos)
    doc: dict[str, Any]
    if fmt == "rules":
        doc = {"groups": groups}
    else:
        doc = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "genai-sre", "role": "alert-rules"}},
            "spec": {"groups": groups},
        }
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)
    return _HEADER.format(source=source) + body


def write(slos: SLOFile, out_dir: str | Path, fmt: Format = "rules", source: str = "the SLO file") -> Path:
    """Write the rules into `out_dir` (created if needed) and return the file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("genai-sre-slos.rules.yml" if fmt == "rules" else "genai-sre-slos.prometheusrule.yaml")
    path.write_text(render(slos, fmt, source), encoding="utf-8")
    return path
