"""Supplements: findings that arrive after an exchange's evaluation count once, the exchange not again."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from genai_sre.config import StorageConfig
from genai_sre.demo.recorder import DemoRecorder
from genai_sre.events import Evaluation, Finding
from genai_sre.pipeline.queue import CaptureQueue
from genai_sre.pipeline.worker import Pipeline
from genai_sre.proxy.routes import BoundedLabel
from genai_sre.slo.sli import SLIRecorder
from genai_sre.storage.samples import SampleStore
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.prometheus import EvaluationMetrics
from tests.factories import exchange
from tests.slo.test_sli import SLOS, Events

EX = exchange(id="ex-9", model="gpt-x", ttft_s=0.4)
RISK = Finding(name="hallucination_risk", score=0.1, label="pass", detector="halu", exchange_id="ex-9")
LATE = Finding(name="hallucination_self_consistency", score=0.7, label="flagged", detector="halu", exchange_id="ex-9")
FIRST = Evaluation(EX, (RISK,), {"halu": "scored"})
SUPPLEMENT = Evaluation(EX, (LATE,), {"halu": "scored"}, supplement=True)


def test_metrics_count_the_late_finding_but_not_the_exchange_again() -> None:
    metrics = Metrics()
    sink = EvaluationMetrics(metrics, BoundedLabel())
    sink.consume(FIRST)
    sink.consume(SUPPLEMENT)
    reg = metrics.registry
    op = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-x"}
    assert reg.get_sample_value("gen_ai_server_time_to_first_token_seconds_count", op) == 1
    late = {"gen_ai_evaluation_name": "hallucination_self_consistency", "label": "flagged"}
    assert any(
        s.value == 1 and all(s.labels.get(k) == v for k, v in late.items())
        for m in reg.collect()
        if m.name == "genai_sre_findings"
        for s in m.samples
    )


def test_slis_count_each_exchange_once() -> None:
    events = Events()
    rec = SLIRecorder(SLOS, events)
    rec.on_evaluation(FIRST)
    seen = list(events.seen)
    rec.on_evaluation(SUPPLEMENT)
    assert seen and events.seen == seen


def test_the_evidence_store_keeps_the_late_finding_in_its_own_row(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, StorageConfig(store_samples=False))
    store.consume(Evaluation(EX, (dataclasses.replace(RISK, label="flagged"),), {"halu": "scored"}))
    store.consume(SUPPLEMENT)
    store.flush()
    rows = store.samples(0, time.time() + 10, bad_only=True)
    assert sorted(r["id"] for r in rows) == ["ex-9", "ex-9+hallucination_self_consistency"]
    store.close()


def test_the_demo_counts_findings_not_exchanges() -> None:
    rec = DemoRecorder()
    rec.consume(FIRST)
    rec.consume(SUPPLEMENT)
    assert rec.totals["exchanges"] == 1
    assert rec.findings[("halu", "hallucination_self_consistency", "flagged")] == 1


def test_pipeline_hands_supplements_to_every_sink_even_past_a_failing_one() -> None:
    got: list[Evaluation] = []

    class Broken:
        def consume(self, evaluation: Evaluation) -> None:
            raise RuntimeError("boom")

    class Keep:
        def consume(self, evaluation: Evaluation) -> None:
            got.append(evaluation)

    pipeline = Pipeline(CaptureQueue(10), lambda c: EX, None, [Broken(), Keep()])  # type: ignore[arg-type]
    pipeline.supplement(SUPPLEMENT)
    assert got == [SUPPLEMENT]
