"""The demo's live terminal view (rich) and its closing summary."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from genai_sre.demo.recorder import DemoRecorder

__all__ = ["LiveView", "alert_evidence", "evidence_text", "failover_table", "render_summary", "slo_rows"]


def slo_rows(sidecar: Any) -> list[tuple[str, str, str, str, str]]:
    """(name, objective, budget left, burn 5m / 1h, firing) for each SLO the sidecar's engine knows."""
    engine = getattr(sidecar, "slo_engine", None)
    if engine is None:
        return []
    rows = []
    for st in engine.status():
        burn = getattr(st, "burn_rates", {}) or {}
        short = ", ".join(f"{w}:{burn[w]:.1f}x" for w in list(burn)[:3] if burn.get(w) is not None)
        firing = ",".join(getattr(st, "firing", ()) or ()) or "-"
        budget = getattr(st, "budget_remaining", None)
        rows.append(
            (
                st.name,
                f"{st.objective:g}%",
                f"{budget * 100:.1f}%" if budget is not None else "-",
                short or "-",
                firing,
            )
        )
    return rows


def evidence_text(ann: Mapping[str, str]) -> str:
    """A fairness alert's evidence in one line: metric, gap with its interval, groups, effective counts."""
    if "evidence_groups" not in ann:
        return ""
    high, _, low = ann["evidence_groups"].partition("|")
    text = (
        f"{ann.get('evidence_metric', '')} gap {_num(ann.get('evidence_gap', ''))} "
        f"[{_num(ann.get('evidence_ci_low', ''))}, {_num(ann.get('evidence_ci_high', ''))}] "
        f"between {high} and {low}"
    )
    if ann.get("evidence_n"):
        text += f" (n {ann['evidence_n'].replace('|', '/')}"
        if ann.get("evidence_n_eff"):
            text += f", units of evidence {ann['evidence_n_eff'].replace('|', '/')}"
        text += ")"
    return text


def _num(value: str) -> str:
    try:
        return f"{float(value):.2f}"
    except ValueError:
        return value


def failover_table(sidecar: Any, rec: DemoRecorder) -> Table | None:
    """Upstreams with a fallback: serving or failed over (why, since when), who answered, the latest actions."""
    controller = getattr(sidecar, "failover", None)
    if controller is None or not controller.enabled:
        return None
    served = rec.served_by()
    table = Table(title="self-healing (fail-over)", expand=True)
    for col in ("upstream", "state", "reason", "since", "answered (30 s)", "latest action"):
        table.add_column(col)
    recent = list(controller.recent)
    for name, st in controller.status().items():
        since = time.strftime("%H:%M:%S", time.localtime(st["since"])) if st["since"] else "-"
        state = f"[bold red]FAILED OVER[/] to {st['fallback']}" if st["active"] else "[green]serving[/]"
        last = next((m for m in reversed(recent) if m.upstream == name), None)
        action = f"{time.strftime('%H:%M:%S', time.localtime(last.at))} {last.action}" if last else "-"
        answered = f"{name} {served.get(name, 0)} · {st['fallback']} {served.get(st['fallback'], 0)}"
        table.add_row(name, state, ", ".join(st["reasons"]) or "-", since, answered, action)
    return table


class LiveView:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live: Live | None = None
        self._state: tuple[Any, DemoRecorder, Any, float, float, dict[str, int]] | None = None
        self._last = 0.0

    @contextlib.contextmanager
    def live(
        self, sidecar: Any, recorder: DemoRecorder, mock: Any, started: float, duration: float, counts: dict[str, int]
    ) -> Iterator[None]:
        self._state = (sidecar, recorder, mock, started, duration, counts)
        with Live(self.render(), console=self.console, refresh_per_second=4, transient=False) as live:
            self._live = live
            yield
        self._live = None

    def refresh(self) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._last > 0.5:
            self._last = now
            self._live.update(self.render())

    def render(self) -> Group:
        assert self._state is not None
        sidecar, rec, mock, started, duration, counts = self._state
        fig = rec.figures()
        elapsed = time.monotonic() - started
        head = Text.assemble(
            ("genai-sre demo ", "bold"),
            f"{elapsed:5.0f}/{duration:.0f}s  upstream phase: ",
            (mock.phase().name, "bold magenta"),
            f"   proxy :{sidecar.proxy_port}  metrics http://127.0.0.1:{sidecar.admin_port}/metrics",
        )
        traffic = Table(title="traffic (last 30 s)", expand=True)
        for col in ("sent", "answered", "client errors", "req/s", "error share", "TTFT p50", "TTFT p95", "mean risk"):
            traffic.add_column(col, justify="right")
        traffic.add_row(
            str(counts["sent"]),
            str(counts["answered"]),
            str(counts["errors"]),
            f"{fig['rps']:.1f}",
            f"{fig['error_share']:.0%}",
            f"{fig['ttft_p50'] * 1000:.0f} ms",
            f"{fig['ttft_p95'] * 1000:.0f} ms",
            f"{fig['mean_risk']:.2f}",
        )
        det = Table(title="detector findings", expand=True)
        for col in ("detector", "finding", "label", "count"):
            det.add_column(col)
        for (det_name, finding, label), c in sorted(rec.findings.items())[:12]:
            det.add_row(det_name, finding, label, str(c))
        groups = Table(title="refusals by user group (last 30 s)", expand=True)
        groups.add_column("group")
        groups.add_column("requests", justify="right")
        groups.add_column("refusal rate", justify="right")
        for g, (total, refused) in rec.refusal_by_group().items():
            groups.add_row(g, str(total), f"{refused / total:.0%}" if total else "-")
        for attr, disp in rec.disparity.items():
            groups.add_row(f"disparity ({attr})", "", f"{(disp.score or 0):.2f} {disp.label or ''}")
        slo = Table(title="SLOs", expand=True)
        for col in ("SLO", "objective", "budget left", "burn rate", "firing"):
            slo.add_column(col)
        for row in slo_rows(sidecar):
            slo.add_row(*row)
        parts: list[Any] = [head, traffic, det, groups, slo]
        healing = failover_table(sidecar, rec)
        if healing is not None:
            parts.append(healing)
        recent = list(sidecar.recent_alerts)[-4:]
        if recent:
            alerts = Table(title="latest alert changes", expand=True)
            for col in ("time", "SLO", "severity", "status", "burn rate", "evidence"):
                alerts.add_column(col)
            for a in recent:
                when = time.strftime("%H:%M:%S", time.localtime(a.ends_at or a.starts_at))
                alerts.add_row(
                    when,
                    a.labels.get("slo", ""),
                    a.labels.get("severity", ""),
                    a.status,
                    a.annotations.get("burn_rate", ""),
                    alert_evidence(a.annotations) if a.status == "firing" else "",
                )
            parts.append(alerts)
        if rec.flagged:
            last = rec.flagged[-1]
            feats = ", ".join(f"{n} {v:+.2f}" for n, v in last.features)
            parts.append(
                Panel(
                    f"[b]Q:[/b] {last.question[:160]}\n[b]A:[/b] {last.answer[:240]}\n"
                    f"[b]risk {last.score:.2f}[/b] {last.explanation[:200]}\n[dim]SHAP: {feats}[/dim]",
                    title="last answer flagged for hallucination risk",
                )
            )
        return Group(*parts)


def alert_evidence(ann: Mapping[str, str]) -> str:
    """The evidence an alert carries, in one line: the gap between groups, or the bad events behind the burn."""
    if "evidence_groups" in ann:
        return evidence_text(ann)
    parts = []
    statuses = ann.get("evidence_statuses", "")
    if statuses and any(not s.startswith("status=2") for s in statuses.split(", ")):
        parts.append(f"{ann.get('evidence_bad_events', '?')} bad events: {statuses}")
    elif "evidence_bad_events" in ann:
        parts.append(f"{ann['evidence_bad_events']} bad events")
    if ann.get("evidence_worst"):
        parts.append(f"worst {ann['evidence_worst']}: {ann.get('description', '')[:120]}")
    return "; ".join(parts)


def render_summary(console: Console, result: Any) -> None:
    rec: DemoRecorder = result.recorder
    sidecar = result.sidecar
    console.rule("[bold]genai-sre demo summary")
    console.print(
        f"requests sent {result.sent}, answered {result.answered}, failed at the client {result.client_errors} "
        f"in {result.duration_s:.0f} s"
    )
    console.print(
        f"exchanges scored {rec.totals['exchanges']}, upstream errors {rec.totals['errors']}, "
        f"hallucination-scored {rec.totals['scored_hallucination']}, flagged {rec.totals['flagged']}"
    )
    served = {k.split(":", 1)[1]: v for k, v in rec.totals.items() if k.startswith("upstream:")}
    if len(served) > 1:
        console.print("answered by upstream: " + ", ".join(f"{k} {v}" for k, v in sorted(served.items())))
    table = Table(title="detector findings")
    for col in ("detector", "finding", "label", "count"):
        table.add_column(col)
    for (d, n, label), c in sorted(rec.findings.items()):
        table.add_row(d, n, label, str(c))
    console.print(table)
    rows = slo_rows(sidecar)
    if rows:
        slo = Table(title="SLOs")
        for col in ("SLO", "objective", "budget left", "burn rate", "firing"):
            slo.add_column(col)
        for row in rows:
            slo.add_row(*row)
        console.print(slo)
    for f in list(rec.flagged)[-2:]:
        feats = ", ".join(f"{n} {v:+.2f}" for n, v in f.features)
        console.print(
            f"[b]flagged[/b] risk {f.score:.2f}: {f.answer[:160]}\n  why: {f.explanation[:160]}\n  SHAP: {feats}"
        )
    fired = [a for a in sidecar.recent_alerts if a.status == "firing"]
    if fired:
        alerts = Table(title="burn-rate alerts fired during the run")
        for col in ("SLO", "severity", "fired (upstream phase)", "burn rate", "evidence"):
            alerts.add_column(col)
        seen = set()
        for a in fired:
            key = (a.labels.get("slo", ""), a.labels.get("severity", ""))
            if key in seen:
                continue
            seen.add(key)
            when = f"{a.starts_at - result.started_at:.0f} s ({result.phase_at(a.starts_at)})"
            alerts.add_row(key[0], key[1], when, a.annotations.get("burn_rate", ""), alert_evidence(a.annotations))
        console.print(alerts)
    for key, value in result.extra.items():
        console.print(f"{key}: {value}")
    console.print(f"data directory (SQLite: evidence, SLO state, incidents): {result.data_dir}")
