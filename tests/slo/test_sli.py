from __future__ import annotations

from dataclasses import replace

from genai_sre.events import Evaluation, Finding
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.sli import SLIRecorder
from genai_sre.slo.spec import parse_slos
from tests.factories import exchange

SLOS = parse_slos(
    """
slos:
  - name: avail
    objective: 99
    sli: {kind: availability}
    filters: {routes: [/v1/chat/completions], tenants: [acme]}
  - name: avail-all
    objective: 99
    sli: {kind: availability, include_probes: true}
  - name: ttft
    objective: 99
    sli: {kind: latency, metric: ttft, threshold_s: 2.0}
    filters: {models: [gpt-x]}
  - name: grounded
    objective: 95
    sli: {kind: quality, detector: halu, finding: hallucination_risk, threshold: 0.8}
  - name: flagged
    objective: 95
    sli: {kind: quality, detector: halu, finding: hallucination_risk, attribute: slo_flagged, threshold: 0.5}
  - name: fairness
    objective: 95
    sli: {kind: time_slice, detector: bias, finding: fairness_disparity, statistic: max, threshold: 1.0, slice: 1m}
"""
)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, slo: str, good: bool) -> None:
        self.seen.append((slo, good))


CHAT = exchange(started_at=600.0, model="gpt-x", ttft_s=0.5)


def test_availability_inline_filters_and_probes() -> None:
    events = Events()
    rec = SLIRecorder(SLOS, events)
    rec.on_request("/v1/chat/completions", "u", "acme", ok=False, probe=False)
    rec.on_request("/v1/embeddings", "u", "acme", ok=True, probe=False)
    rec.on_request("/v1/chat/completions", "u", "other", ok=True, probe=False)
    rec.on_request("/v1/chat/completions", "u", "acme", ok=True, probe=True)
    assert events.seen == [
        ("avail", False), ("avail-all", False), ("avail-all", True), ("avail-all", True), ("avail-all", True),
    ]


def test_latency_and_quality_leave_out_unscored_and_probes() -> None:
    events = Events()
    engine = SLOEngine(SLOS, clock=lambda: 1000.0)
    rec = SLIRecorder(SLOS, events, engine)
    risky = Finding(name="hallucination_risk", score=0.9, detector="halu", attributes={"slo_flagged": True})
    fine = Finding(name="hallucination_risk", score=0.1, detector="halu", attributes={"slo_flagged": False})
    rec.on_evaluation(Evaluation(replace(CHAT, ttft_s=3.0), (risky,), {"halu": "scored"}))
    rec.on_evaluation(Evaluation(replace(CHAT, ttft_s=1.0), (fine,), {"halu": "scored"}))
    rec.on_evaluation(Evaluation(replace(CHAT, ttft_s=None, status=502), (), {"halu": "failed"}))
    rec.on_evaluation(Evaluation(replace(CHAT, model="other"), (), {"halu": "sampled_out"}))
    rec.on_evaluation(Evaluation(replace(CHAT, probe=True, ttft_s=9.0), (risky,), {"halu": "scored"}))
    assert events.seen == [
        ("ttft", False), ("grounded", False), ("flagged", False),
        ("ttft", True), ("grounded", True), ("flagged", True),
    ]
    st = {s.name: s for s in engine.status()}
    assert (st["ttft"].events_good, st["ttft"].events_bad) == (1, 1)


def test_time_slices_emit_one_event_per_slice() -> None:
    events = Events()
    rec = SLIRecorder(SLOS, events, clock=lambda: 0.0)

    def disparity(t: float, score: float) -> Evaluation:
        f = Finding(name="fairness_disparity", score=score, detector="bias")
        return Evaluation(replace(CHAT, started_at=t, model="other"), (f,), {"bias": "scored"})

    rec.on_evaluation(disparity(600.0, 0.2))
    rec.on_evaluation(disparity(630.0, 1.5))  # the max of minute 10 is >= 1: bad
    rec.on_evaluation(disparity(659.0, 0.1))
    assert events.seen == []
    rec.on_evaluation(disparity(665.0, 0.3))  # minute 11 opens: minute 10 closes
    assert events.seen == [("fairness", False)]
    rec.flush(700.0)  # minute 11 not over yet
    assert events.seen == [("fairness", False)]
    rec.flush(720.0)
    assert events.seen == [("fairness", False), ("fairness", True)]
    rec.flush(900.0)  # minutes without data are left out
    assert len(events.seen) == 2
