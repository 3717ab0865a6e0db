"""Delivery of notifications: per-attempt timeout, retries with backoff, a log, metrics.

Only failures a receiver marks retryable (timeouts, connection errors, HTTP 429
and 5xx) are retried, with exponential backoff from `initial_backoff_s`,
doubling up to `max_backoff_s`, at most `max_attempts` attempts. Any other 4xx
fails at once: sending the same request again would fail the same way.

Every delivery ends as one `DeliveryRecord`, kept in a bounded in-memory log
and appended to a JSONL file in the data directory that rotates by size and
ages out (`log_max_bytes`, `log_keep`, `log_max_age_days`); it names the
receiver and the group, never a URL or key.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from genai_sre.alerting.config import DeliveryConfig
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.receivers import Receiver
from genai_sre.errors import DeliveryError
from genai_sre.storage.rotate import RotatingFile

if TYPE_CHECKING:
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["Delivery", "DeliveryRecord"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    at: float
    receiver: str
    group_key: str
    status: Literal["firing", "resolved"]
    fingerprints: tuple[str, ...]
    outcome: Literal["sent", "failed"]
    attempts: int
    duration_s: float
    error: str = ""


class Delivery:
    def __init__(
        self,
        config: DeliveryConfig,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        log_path: str | Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._log_path = Path(log_path) if log_path is not None else None
        self._log_file = (
            RotatingFile(self._log_path, config.log_max_bytes, config.log_keep, config.log_max_age_days)
            if self._log_path is not None
            else None
        )
        self._sleep = sleep
        self._log: collections.deque[DeliveryRecord] = collections.deque(maxlen=config.log_entries)
        self._observers: list[Callable[[DeliveryRecord], object]] = []

    @property
    def log(self) -> Sequence[DeliveryRecord]:
        return tuple(self._log)

    def observe(self, callback: Callable[[DeliveryRecord], object]) -> None:
        """Call `callback` with every finished delivery (the incident timeline listens here).

        A callback that returns an awaitable is awaited (so it can do its I/O off the event loop)."""
        self._observers.append(callback)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self._config.max_backoff_s, self._config.initial_backoff_s * 2 ** (attempt - 1)))

    async def deliver(self, receiver_name: str, receiver: Receiver, notification: Notification) -> DeliveryRecord:
        cfg = self._config
        started = time.monotonic()
        error = ""
        attempt = 0
        outcome: Literal["sent", "failed"] = "failed"
        while attempt < cfg.max_attempts:
            attempt += 1
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(receiver.send(notification), cfg.timeout_s)
                outcome, error = "sent", ""
                self._observe_latency(receiver_name, time.monotonic() - t0)
                break
            except TimeoutError:
                error, retryable = f"timed out after {cfg.timeout_s}s", True
            except DeliveryError as exc:
                error, retryable = str(exc), exc.retryable
            except Exception as exc:  # isolation boundary: a broken receiver must not stop the router
                logger.exception("receiver %s raised an unexpected error", receiver_name)
                error, retryable = f"{type(exc).__name__}: {exc}", False
            self._observe_latency(receiver_name, time.monotonic() - t0)
            if not retryable or attempt >= cfg.max_attempts:
                break
            if self._metrics is not None:
                self._metrics.counter("genai_sre_alert_delivery_retries").labels(receiver=receiver_name).inc()
            delay = self.backoff(attempt)
            logger.info("receiver %s attempt %s failed (%s); retrying in %.2fs", receiver_name, attempt, error, delay)
            await self._sleep(delay)
        record = DeliveryRecord(
            at=self._clock(),
            receiver=receiver_name,
            group_key=notification.group_key,
            status=notification.status,
            fingerprints=tuple(a.fingerprint for a in notification.alerts),
            outcome=outcome,
            attempts=attempt,
            duration_s=round(time.monotonic() - started, 6),
            error=error,
        )
        if outcome == "failed":
            logger.warning("delivery to %s failed after %s attempt(s): %s", receiver_name, attempt, error)
        await self._record(record)
        return record

    def _observe_latency(self, receiver: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.histogram("genai_sre_alert_delivery_duration_seconds").labels(receiver=receiver).observe(
                seconds
            )

    async def _record(self, record: DeliveryRecord) -> None:
        self._log.append(record)
        if self._metrics is not None:
            self._metrics.counter("genai_sre_alert_notifications").labels(
                receiver=record.receiver, outcome=record.outcome
            ).inc()
        for callback in self._observers:
            try:
                result = callback(record)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # isolation boundary: an observer must not break delivery
                logger.exception("delivery observer failed")
        if self._log_file is not None:
            line = json.dumps({**asdict(record), "fingerprints": list(record.fingerprints)}) + "\n"
            try:
                await asyncio.to_thread(self._log_file.append, line)
            except OSError as exc:
                logger.warning("cannot append to delivery log %s: %s", self._log_path, exc)
