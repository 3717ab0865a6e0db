"""The consume loop: Capture → Exchange → detectors → sinks (SLIs, metrics, traces, evidence store).

It runs in the sidecar's event loop at low priority: it takes captures in
batches, yields between exchanges, and keeps its own busy time under a CPU
budget (a share of one core), so that at saturation forwarding keeps the CPU
and the queue drops (counted) instead. Detectors that need real CPU push their
work to pools of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from genai_sre.detection.runner import DetectorRunner
from genai_sre.events import Capture, Evaluation, Exchange
from genai_sre.pipeline.queue import CaptureQueue
from genai_sre.telemetry.metrics import Metrics

__all__ = ["EvaluationSink", "Pipeline", "deliver_supplement"]

LARGE_CAPTURE = 256 * 1024  # bytes of request + response above which parsing leaves the event loop

logger = logging.getLogger(__name__)


class EvaluationSink(Protocol):
    """Receives every evaluated exchange. Must be quick; slow work goes to its own queue."""

    def consume(self, evaluation: Evaluation) -> None: ...


class Pipeline:
    def __init__(
        self,
        queue: CaptureQueue[Capture],
        parse: Callable[[Capture], Exchange],
        runner: DetectorRunner,
        sinks: Sequence[EvaluationSink],
        metrics: Metrics | None = None,
        batch_size: int = 32,
        cpu_budget: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[], bool] | None = None,
        cpu_budget_under_load: float = 0.1,
    ) -> None:
        self.queue = queue
        self.parse = parse
        self.runner = runner
        self.sinks = list(sinks)
        self.metrics = metrics
        self.batch_size = batch_size
        self.cpu_budget = cpu_budget
        self.cpu_budget_under_load = min(cpu_budget, cpu_budget_under_load)
        self.busy = busy
        self.clock = clock
        self.processed = 0
        self.parse_errors = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._busy_tokens = 1.0
        self._last = clock()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> bool:
        return self._running and all(not t.done() for t in self._tasks)

    def offer(self, capture: Capture) -> bool:
        ok = self.queue.offer(capture)
        if self.metrics is not None:
            self.metrics.counter("genai_sre_pipeline_captures").inc()
            if not ok:
                self.metrics.counter("genai_sre_pipeline_dropped").labels("queue_full").inc()
        if ok:
            self._idle.clear()
        return ok

    def start(self, workers: int = 1) -> None:
        self._running = True
        for _ in range(max(1, workers)):
            self._tasks.append(asyncio.create_task(self._loop(), name="genai-sre-pipeline"))

    def supplement(self, evaluation: Evaluation) -> None:
        """Hand later findings about an already evaluated exchange to every sink (see `Evaluation.supplement`)."""
        deliver_supplement(self.sinks, evaluation)

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Finish what is queued (bounded by a timeout), then stop the workers."""
        try:
            await asyncio.wait_for(self.wait_idle(), drain_timeout_s)
        except TimeoutError:
            logger.warning("pipeline stopped with %d captures unprocessed", len(self.queue))
        self._running = False
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_idle(self) -> None:
        while len(self.queue) or not self._idle.is_set():
            await asyncio.sleep(0.01)

    async def _loop(self) -> None:
        while True:
            batch = await self.queue.take_batch(self.batch_size)
            self._idle.clear()
            start = self.clock()
            try:
                # Start the exchanges one loop turn apart, and let each yield between its steps: the
                # loop polls sockets between any two steps, so a request never waits behind a batch.
                tasks = []
                for capture in batch:
                    tasks.append(asyncio.ensure_future(self._one(capture)))
                    await asyncio.sleep(0)
                await asyncio.gather(*tasks)
            finally:
                # The batch's exchanges run concurrently: charge the batch's wall time once.
                self._busy_tokens -= self.clock() - start
                if self.metrics is not None:
                    self.metrics.gauge("genai_sre_pipeline_queue_depth").set(len(self.queue))
                if not len(self.queue):
                    self._idle.set()
            await self._throttle()

    async def _one(self, capture: Capture) -> None:
        start = self.clock()
        try:
            size = len(capture.request_body) + len(capture.response_body)
            # A large capture is parsed in a thread: the event loop keeps forwarding meanwhile.
            exchange = await asyncio.to_thread(self.parse, capture) if size > LARGE_CAPTURE else self.parse(capture)
        except Exception:  # isolation boundary: a malformed capture is dropped and counted
            self.parse_errors += 1
            logger.debug("could not parse capture %s", capture.id, exc_info=True)
            if self.metrics is not None:
                self.metrics.counter("genai_sre_pipeline_dropped").labels("parse_error").inc()
            return
        await asyncio.sleep(0)
        try:
            evaluation = await self.runner.evaluate(exchange)
        except Exception:  # isolation boundary: the worker loop must outlive any exchange
            logger.exception("scoring failed on exchange %s", exchange.id)
            return
        await asyncio.sleep(0)
        for sink in self.sinks:
            try:
                sink.consume(evaluation)
            except Exception:  # isolation boundary: one sink must not stop the others
                logger.exception("sink %s failed on exchange %s", type(sink).__name__, exchange.id)
        self.processed += 1
        elapsed = self.clock() - start
        if self.metrics is not None:
            self.metrics.histogram("genai_sre_pipeline_processing_seconds").observe(elapsed)

    async def _throttle(self) -> None:
        # Under load (many requests in flight) forwarding comes first: the budget shrinks and the
        # queue absorbs the difference, dropping (counted) when full.
        budget = self.cpu_budget_under_load if self.busy is not None and self.busy() else self.cpu_budget
        now = self.clock()
        self._busy_tokens = min(1.0, self._busy_tokens + (now - self._last) * budget)
        self._last = now
        if self._busy_tokens < 0 and budget > 0:
            await asyncio.sleep(min(1.0, -self._busy_tokens / budget))
        else:
            await asyncio.sleep(0)


def deliver_supplement(sinks: Sequence[EvaluationSink], evaluation: Evaluation) -> None:
    """Hand later findings about an already evaluated exchange to every sink (see `Evaluation.supplement`)."""
    for sink in sinks:
        try:
            sink.consume(evaluation)
        except Exception:  # isolation boundary: one sink must not stop the others
            logger.exception("sink %s failed on a supplement for %s", type(sink).__name__, evaluation.exchange.id)
