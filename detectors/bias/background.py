"""Heavy evaluations off the event loop: one job at a time in a worker thread, within a CPU share.

`detect()` runs on the event loop that also forwards traffic, and the runner cuts it after a few
seconds; an evaluation that embeds hundreds of answers must not run there, nor be awaited there.
`BackgroundJob.submit(fn, on_done)` starts `fn` in the job's own thread when none is running and
the budget allows, and returns at once; `on_done(result)` is called on the event loop when it
finishes (a job that raises is logged and dropped). After a job that took `t` seconds the next one
waits `t / share` seconds, so the jobs use at most `share` of one core on average, whatever the
traffic. The work is measured in wall-clock seconds of the job (a job whose library uses several
threads may use more CPU than that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["BackgroundJob"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundJob(Generic[T]):
    """At most one running job, spaced out to use at most `share` of one core."""

    def __init__(self, name: str, share: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError("the CPU share of a background job must lie in (0, 1]")
        self.name = name
        self.share = share
        self.clock = clock
        self.runs = 0
        self.failures = 0
        self.busy_s = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._running: asyncio.Future[tuple[T, float]] | None = None
        self._not_before = float("-inf")

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    def ready(self) -> bool:
        """No job running and the budget spent by the last one has been earned back."""
        return not self.running and self.clock() >= self._not_before

    def submit(self, fn: Callable[[], T], on_done: Callable[[T], None]) -> bool:
        """Start `fn` in the worker thread (False when busy or over budget); never waits for it."""
        if not self.ready():
            return False
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"genai-sre-{self.name}")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _timed, fn)
        self._running = future
        future.add_done_callback(lambda done: self._finish(done, on_done))
        return True

    def _finish(self, done: asyncio.Future[tuple[T, float]], on_done: Callable[[T], None]) -> None:
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            self.failures += 1
            self._not_before = self.clock() + 60.0  # a failing job is retried after a pause, not in a loop
            logger.error("background job %s failed", self.name, exc_info=exc)
            return
        result, seconds = done.result()
        self.runs += 1
        self.busy_s += seconds
        self._not_before = self.clock() + seconds / self.share
        try:
            on_done(result)
        except Exception:  # isolation boundary: a broken report must not break the next job
            logger.exception("reporting the result of background job %s failed", self.name)

    async def wait(self) -> None:
        """Until the running job (if any) has finished and reported (tests, shutdown)."""
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait([running])
            await asyncio.sleep(0)  # let the done callback run

    async def aclose(self) -> None:
        if self._running is not None and not self._running.done():
            self._running.cancel()
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
            self._executor = None


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
