"""A time-slice alert (fairness) carries the evidence of its worst bad slice."""

from __future__ import annotations

from genai_sre.events import Evaluation, Finding
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.sli import SLIRecorder
from genai_sre.slo.spec import parse_slos
from genai_sre.wiring import _with_evidence
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
