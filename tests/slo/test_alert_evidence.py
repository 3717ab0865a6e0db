"""A time-slice alert (fairness) carries the evidence of its worst bad slice."""

from __future__ import annotations

from genai_sre.events import Alert, Evaluation, Exchange, Finding
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.sli import SLIRecorder
from genai_sre.slo.spec import parse_slos
from genai_sre.wiring import _with_evidence
from tests import factories
from tests.factories import evaluation

SLOS = """
min_events: 1
alert_windows:
  page: []
  ticket:
    - {budget_percent: 10, long: 10m, short: 2m}
slos:
  - name: fairness
    objective: 99
    period: 1d
    sli: {kind: time_slice, detector: bias, finding: fairness_disparity, threshold: 1.0, slice: 1m}
    alerting: {page: {enabled: false}}
"""


def _disparity(i: int, at: float, score: float) -> Evaluation:
    attrs = {
        "attribute": "group",
        "metric": "refusal",
        "groups": "group_b|group_a",
        "gap": 0.15,
        "ci_low": 0.09,
        "ci_high": 0.21,
        "since": 1000.0,
    }
    f = Finding(
        name="fairness_disparity",
        score=score,
        label="fail" if score >= 1 else "pass",
        attributes=attrs,
        detector="bias",
        exchange_id=f"e{i}",
    )
    return evaluation((f,), {"bias": "scored"}, id=f"e{i}", started_at=at)


def test_fairness_ticket_carries_groups_gap_interval_and_start() -> None:
    t = [0.0]
    engine = SLOEngine(parse_slos(SLOS), clock=lambda: t[0])
    recorder = SLIRecorder(parse_slos(SLOS), lambda slo, good: None, engine, clock=lambda: t[0])
    alerts = []
    for minute in range(30):
        for k in range(6):
            t[0] = minute * 60 + k * 10
            recorder.on_evaluation(_disparity(minute * 6 + k, t[0], 0.2 if minute < 10 else 2.5))
        t[0] = (minute + 1) * 60
        recorder.flush()
        alerts += engine.evaluate()
    firing = [a for a in alerts if a.status == "firing"]
    assert firing and firing[0].labels["slo"] == "fairness" and firing[0].labels["severity"] == "ticket"
    enriched = _with_evidence(firing[0], recorder.evidence("fairness"))
    ann = enriched.annotations
    assert ann["evidence_groups"] == "group_b|group_a" and ann["evidence_metric"] == "refusal"
    assert ann["evidence_gap"] == "0.15" and ann["evidence_ci_low"] == "0.09" and ann["evidence_ci_high"] == "0.21"
    assert ann["evidence_since"] == "1000" and ann["evidence_exchange_id"].startswith("e")


EXCHANGE_SLOS = """
min_events: 1
alert_windows:
  page:
    - {budget_percent: 5, long: 2m, short: 20s}
  ticket: []
slos:
  - name: avail
    objective: 99
    period: 1h
    sli: {kind: availability}
  - name: grounded
    objective: 97
    period: 1h
    sli: {kind: quality, detector: hallucination, finding: hallucination_risk, attribute: slo_flagged, threshold: 0.5}
  - name: fast
    objective: 99
    period: 1h
    sli: {kind: latency, metric: ttft, threshold_s: 1.0}
"""


def _exchange(i: int, at: float, status: int = 200, error: str | None = None, ttft: float = 0.1) -> Exchange:
    return factories.exchange(
        id=f"x{i}", started_at=at, upstream="u", model=None, messages=(), context=(), question="", answer="",
        status=status, error=error, ttft_s=ttft,
    )  # fmt: skip


def _risk(ex: Exchange, risk: float) -> Evaluation:
    f = Finding(
        name="hallucination_risk", score=risk, label="flagged" if risk >= 0.5 else "pass",
        explanation=f"risk {risk:.2f}: 2 number(s) not in the context", attributes={"slo_flagged": risk >= 0.5},
        detector="hallucination", exchange_id=ex.id,
    )
    return Evaluation(ex, (f,), {"hallucination": "scored"})


def test_exchange_alerts_quote_their_bad_events_and_samples_know_their_slos() -> None:
    t = [1000.0]
    slos = parse_slos(EXCHANGE_SLOS)
    recorder = SLIRecorder(slos, lambda slo, good: None, SLOEngine(slos, clock=lambda: t[0]), clock=lambda: t[0])
    failing = [
        Evaluation(_exchange(1, 985.0, 503), (), {}),
        Evaluation(_exchange(2, 990.0, 503), (), {}),
        Evaluation(_exchange(3, 995.0, 200, error="cut"), (), {}),
        Evaluation(_exchange(4, 900.0, 502), (), {}),  # outside the alert's 20 s window
    ]
    for ev in failing:
        recorder.on_evaluation(ev)
    ev = recorder.evidence("avail")
    assert ev["bad_events"] == "3" and ev["exchange_id"] == "x3"
    assert ev["statuses"] == "status=503 x2, status=error (cut) x1"
    recorder.on_evaluation(_risk(_exchange(5, 996.0), 0.62))
    recorder.on_evaluation(_risk(_exchange(6, 997.0), 0.93))
    recorder.on_evaluation(_risk(_exchange(7, 998.0, ttft=2.5), 0.1))
    grounded = recorder.evidence("grounded")
    assert grounded["worst"] == "0.93 (x6)" and grounded["explanation"].startswith("risk 0.93")
    assert recorder.evidence("fast")["worst"] == "2.50 s (x7)"
    alert = _with_evidence(
        Alert(labels={"slo": "avail"}, annotations={"burn_rate": "30"}, status="firing", starts_at=1000.0), ev
    )
    assert alert.annotations["evidence_statuses"] == "status=503 x2, status=error (cut) x1"
    assert recorder.bad_slos(failing[0]) == ("avail",)
    assert recorder.bad_slos(_risk(_exchange(8, 999.0, ttft=3.0), 0.7)) == ("grounded", "fast")
    assert recorder.bad_slos(_risk(_exchange(9, 999.0), 0.2)) == ()
