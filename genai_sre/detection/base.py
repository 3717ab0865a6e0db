"""The detector extension point: one async method, plus close."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from genai_sre.events import Evaluation, Exchange, Finding
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["BaseDetector", "Detector", "DetectorContext"]


@runtime_checkable
class Detector(Protocol):
    """Inspects completed exchanges and reports findings.

    Detectors run off the request path, after the response reached the client.
    They must not mutate the exchange. Return an empty sequence when there is
    nothing to say. Exceptions are caught, logged and counted by the runner and
    never reach a client. CPU-heavy work belongs in a thread or process pool
    (`asyncio.to_thread`, `loop.run_in_executor`) so the event loop that also
    forwards traffic never blocks.

    A detector class may declare the finding names it reports as a class
    attribute `finding_names` (a tuple of strings): `check-config` and the
    start then refuse an SLO that names a finding the detector never reports.

    Example:

    ```python
    class TruncationDetector(BaseDetector):
        async def detect(self, exchange: Exchange) -> Sequence[Finding]:
            if exchange.finish_reason == "length":
                return [Finding(name="truncated", score=1.0, label="fail")]
            return []
    ```

    A detector that reads another detector's findings about the same exchange
    (the bias detector reading the hallucination risk) names those detector
    instances in an `after` attribute; the runner then starts it once they
    finished, and `context.findings(exchange.id)` returns what they found.
    """

    async def detect(self, exchange: Exchange) -> Sequence[Finding]: ...

    async def aclose(self) -> None: ...


class BaseDetector:
    """Convenience base class: implement `detect()`, inherit a no-op `aclose()`."""

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        raise NotImplementedError("The 'detect' method must be implemented.")  # pragma: no cover

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class DetectorContext:
    """What the sidecar hands a detector factory that asks for it (a `context` keyword).

    `clock` is wall-clock seconds (injectable for tests and replays);
    `registry` the Prometheus registry a detector may add its own metrics to,
    and `metrics` the sidecar's instruments of the metric table (to share
    rather than register twice); `data_dir` where it may keep state; `emit`
    hands the sinks findings that arrive after `detect()` returned, as a
    supplement `Evaluation` of the same exchange (None outside a sidecar: the
    detector then has nowhere to send them later); `findings(exchange_id)`
    returns what the detectors this one runs `after` (see `Detector`) found
    about the exchange being evaluated.
    """

    name: str
    clock: Callable[[], float] = time.time
    registry: CollectorRegistry | None = None
    metrics: Metrics | None = None
    data_dir: Path | None = None
    emit: Callable[[Evaluation], None] | None = None
    findings: Callable[[str], Sequence[Finding]] | None = None
