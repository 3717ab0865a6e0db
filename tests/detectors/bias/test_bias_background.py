"""Heavy work of the bias detector runs off the event loop, within a CPU share, and reports when done."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from detectors.bias import BiasDetector
from detectors.bias.background import BackgroundJob
from detectors.bias.outcomes import OutcomeMeter, Outcomes
from genai_sre.detection.base import DetectorContext
from genai_sre.detection.runner import DetectorRunner, DetectorSlot
from genai_sre.events import Evaluation, Exchange

from .helpers import make_exchange

T0 = 1_700_000_000.0


class SlowTopicEmbedder:
    """MiniLM's stand-in: a direction per topic word plus noise, and a slow encode (like CPU MiniLM)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.threads: set[int] = set()
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        self.threads.add(threading.get_ident())
        self.calls += 1
        time.sleep(self.delay_s)
        rows = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % 2**32)
            v = rng.normal(0, 0.3, 8) + (np.eye(8)[0] if "hostile" in t else np.eye(8)[1])
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows)


def test_embedding_drift_runs_in_the_background_and_reports_through_emit() -> None:
    now = [T0]
    emitted: list[Evaluation] = []
    embedder = SlowTopicEmbedder(delay_s=0.4)
    context = DetectorContext(name="bias", clock=lambda: now[0], emit=emitted.append)
    detector = BiasDetector(context=context, embedder=embedder, embedding_drift=True, embedding_sample=20,
                            embedding_every_s=60, embedding_cpu_share=1.0)
    # The runner cuts a detector after 0.3 s here: an awaited 0.4 s embedding would time out.
    runner = DetectorRunner([DetectorSlot("bias", detector, timeout_s=0.3)])

    def exchange(i: int, group: str, topic: str) -> Exchange:
        return make_exchange(i, answer=f"a {topic} answer number {i}", labels={"group.gender": group})

    async def main() -> tuple[list[str], float, int]:
        loop_thread = threading.get_ident()
        outcomes: list[str] = []
        slowest = 0.0
        for i in range(120):
            now[0] += 3.0
            for g in ("a", "b"):
                topic = "hostile" if g == "b" and i >= 40 else "friendly"
                start = time.perf_counter()
                evaluation = await runner.evaluate(exchange(i * 2 + (g == "b"), g, topic))
                slowest = max(slowest, time.perf_counter() - start)
                outcomes.append(evaluation.outcomes["bias"])
            if i % 10 == 0:
                await asyncio.sleep(0)  # a job may finish between exchanges, as in a sidecar
        for _ in range(40):  # keep traffic coming until the background job has reported
            if any(e.findings[0].name == "embedding_drift" for e in emitted):
                break
            await asyncio.sleep(0.1)
            now[0] += 3.0
            await runner.evaluate(exchange(9999, "a", "friendly"))
        await detector.background.wait()
        assert loop_thread not in embedder.threads
        await runner.aclose()
        return outcomes, slowest, embedder.calls

    outcomes, slowest, calls = asyncio.run(main())
    assert set(outcomes) == {"scored"}  # never cut by the runner's timeout
    assert slowest < 0.3 and calls >= 2
    reports = [e for e in emitted if e.findings[0].name == "embedding_drift"]
    assert reports, "the background evaluation never reported"
    report = reports[0]
    assert report.supplement and report.outcomes == {"bias": "scored"}
    finding = report.findings[0]
    assert finding.detector == "bias" and finding.exchange_id == report.exchange.id
    assert finding.label == "fail" and finding.attributes["group"] == "b"
    assert detector._embedding_finding() is not None  # later exchanges carry it as well


def test_background_job_stays_within_its_cpu_share_and_survives_failures() -> None:
    clock = [0.0]
    job: BackgroundJob[int] = BackgroundJob("test", share=0.25, clock=lambda: clock[0])
    results: list[int] = []

    def work() -> int:
        time.sleep(0.05)
        return 7

    def broken() -> int:
        raise RuntimeError("boom")

    async def main() -> None:
        assert job.submit(work, results.append)
        assert not job.submit(work, results.append)  # one at a time
        await job.wait()
        assert results == [7] and job.runs == 1 and job.busy_s >= 0.05
        clock[0] += job.busy_s / 0.25 * 0.9
        assert not job.ready()  # 0.05 s of work earns a pause of 0.2 s at a quarter of a core
        clock[0] += job.busy_s / 0.25 * 0.2
        assert job.ready()
        assert job.submit(broken, results.append)
        await job.wait()
        assert job.failures == 1 and results == [7] and not job.ready()
        clock[0] += 61
        assert job.ready()
        await job.aclose()

    asyncio.run(main())
    with pytest.raises(ValueError):
        BackgroundJob("bad", share=0.0)


def test_outcomes_are_measured_off_the_event_loop() -> None:
    threads: list[int] = []

    risk_threads: list[int] = []

    class RecordingMeter(OutcomeMeter):
        def measure_answer(self, exchange: Exchange, risk: float | None = None) -> Outcomes:
            threads.append(threading.get_ident())
            return super().measure_answer(exchange, risk)

    def risk(exchange: Exchange) -> float:
        risk_threads.append(threading.get_ident())  # another detector's state: read on the loop only
        return 0.25

    detector = BiasDetector(context=DetectorContext(name="bias", clock=lambda: T0))
    detector.meter = RecordingMeter(detector.meter.refusal, risk)
    outcomes: list[Outcomes] = []

    async def main() -> int:
        outcomes.append(await detector._measure(make_exchange(1, answer="word " * 400)))
        await detector.detect(make_exchange(2, labels={"group.gender": "a"}, answer="word " * 400))
        await detector.aclose()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads and loop_thread not in threads
    assert risk_threads and set(risk_threads) == {loop_thread}
    assert outcomes[0].hallucination_risk == 0.25 and outcomes[0].length == 400
