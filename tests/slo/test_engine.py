from __future__ import annotations

from pathlib import Path

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import parse_slos
from genai_sre.slo.store import SLOStore

SLOS = parse_slos(
    """
service: chat
labels: {team: ml}
min_events: 20
slos:
  - name: avail
    description: Requests answered
    objective: 99.9
    sli: {kind: availability}
    alerting:
      runbook_url: https://runbooks.example.com/avail
      page: {labels: {route_to: oncall}}
  - name: quiet
    objective: 99
    sli: {kind: availability}
    alerting: {page: {enabled: false}}
"""
)

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _healthy_then_outage(engine: SLOEngine, clock: Clock, minutes_ok: int, minutes_bad: int) -> None:
    # Each minute's events at its start; the clock then stands at the end of the last minute.
    for _ in range(minutes_ok):
        engine.record("avail", True, count=100)
        clock.t += 60
    for _ in range(minutes_bad):
        engine.record("avail", False, count=100)
        clock.t += 60


def test_outage_pages_with_labels_and_annotations_then_resolves() -> None:
    clock = Clock()
    engine = SLOEngine(SLOS, clock=clock)
    _healthy_then_outage(engine, clock, 120, 0)
    assert engine.evaluate() == []
    _healthy_then_outage(engine, clock, 0, 3)
    changes = engine.evaluate()
    page = next(a for a in changes if a.labels["severity"] == "page")
    assert page.status == "firing" and page.starts_at == clock.t
    assert page.labels == {
        "team": "ml", "route_to": "oncall", "alertname": "AvailBudgetBurn", "slo": "avail", "severity": "page",
        "sloth_id": "chat-avail", "sloth_service": "chat", "sloth_slo": "avail", "sloth_severity": "page",
    }
    assert page.annotations["runbook_url"] == "https://runbooks.example.com/avail"
    assert page.annotations["burn_rate"] == "600.00"  # 5m window: 300 bad of 500
    assert float(page.annotations["budget_remaining"].rstrip("%")) < 0
    assert "Requests answered" in page.annotations["description"]
    assert engine.evaluate() == []  # no change, no alert
    _healthy_then_outage(engine, clock, 6 * 60, 0)
    resolved = {a.labels["severity"]: a for a in engine.evaluate()}
    assert resolved["page"].status == "resolved" and resolved["page"].ends_at == clock.t
    assert resolved["page"].starts_at == page.starts_at


def test_status_reports_every_window() -> None:
    clock = Clock()
    engine = SLOEngine(SLOS, clock=clock)
    _healthy_then_outage(engine, clock, 55, 5)
    st = {s.name: s for s in engine.status()}["avail"]
    assert [w.window for w in st.windows] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert st.error_ratios["5m"] == 1.0
    assert st.burn_rates["1h"] == 500 / 6000 / 0.001
    assert st.events_good == 5500 and st.events_bad == 500
    assert st.firing == ("page", "ticket")
    quiet = {s.name: s for s in engine.status()}["quiet"]
    assert quiet.error_ratios["5m"] is None and quiet.budget_remaining is None and quiet.firing == ()


def test_fleet_mode_computes_status_but_returns_no_alerts() -> None:
    clock = Clock()
    engine = SLOEngine(SLOS, clock=clock, alerting=False)
    _healthy_then_outage(engine, clock, 60, 5)
    assert engine.evaluate() == []
    assert {s.name: s for s in engine.status()}["avail"].firing == ("page", "ticket")


def test_page_disabled_per_slo_and_low_traffic_guard() -> None:
    clock = Clock()
    engine = SLOEngine(SLOS, clock=clock)
    for _ in range(10):  # 10 failures in 10 minutes: below 20 events in every window
        engine.record("quiet", False)
        engine.record("avail", False)
        clock.t += 60
    assert engine.evaluate() == []
    for _ in range(30):
        engine.record("quiet", False)
        clock.t += 60
    changes = engine.evaluate()
    assert [(a.labels["slo"], a.labels["severity"]) for a in changes] == [("quiet", "ticket")]


def test_unknown_slo_is_ignored() -> None:
    engine = SLOEngine(SLOS, clock=Clock())
    engine.record("nope", False)
    assert all(s.events_bad == 0 for s in engine.status())


def test_snapshot_interval_restore_and_firing_state(tmp_path: Path) -> None:
    clock = Clock()
    engine = SLOEngine(SLOS, clock=clock, store=SLOStore(tmp_path), snapshot_interval_s=10)
    _healthy_then_outage(engine, clock, 60, 5)
    fired = engine.evaluate()  # more than 10 s since start: snapshots
    assert {a.labels["severity"] for a in fired} == {"page", "ticket"}
    engine.record("avail", False, count=1000)  # not in the snapshot (lost on a crash)
    assert (tmp_path / "slo.db").exists()

    again = SLOEngine(SLOS, clock=clock, store=SLOStore(tmp_path))
    assert again.restore() == clock.t
    st = {s.name: s for s in again.status()}["avail"]
    assert (st.events_good, st.events_bad) == (6000, 500)
    assert again.evaluate() == []  # still firing: no duplicate page after a restart
    engine.close()  # shutdown snapshot includes everything
    last = SLOEngine(SLOS, clock=clock, store=SLOStore(tmp_path))
    last.restore()
    assert {s.name: s for s in last.status()}["avail"].events_bad == 1500
