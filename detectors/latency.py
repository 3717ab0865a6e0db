"""Latency detector: TTFT, duration, time per output token and tokens/s, against thresholds and a baseline.

Each successful exchange gets one finding per measured signal (`ttft`,
`duration`, `time_per_output_token`, `tokens_per_second`) whose `score` is the
measured value and whose `label` is `slow` when it crosses the configured
threshold, else `ok`. A rolling baseline per model (the median over the last
`baseline_size` exchanges) catches regressions that stay under the absolute
thresholds: when the median of the last `recent_size` TTFTs exceeds
`regression_factor` × the baseline median, the exchange also gets a
`latency_regression` finding labelled `regressed`.

Configuration (YAML `options`):

```yaml
detectors:
  - name: latency
    type: latency
    options: {ttft_threshold_s: 2.0, duration_threshold_s: 30, regression_factor: 1.5}
```
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from genai_sre import BaseDetector, DetectorContext, Exchange, Finding
from genai_sre.schema import Range, build

__all__ = ["LatencyDetector", "LatencyOptions"]


@dataclass(frozen=True)
class LatencyOptions:
    """The detector's `options:` (strings from `${VAR}` are converted, ranges checked, unknown keys refused)."""

    ttft_threshold_s: Annotated[float, Range(above=0)] = 2.0
    duration_threshold_s: Annotated[float, Range(above=0)] = 30.0
    tpot_threshold_s: Annotated[float, Range(above=0)] = 0.2
    min_tokens_per_s: Annotated[float, Range(min=0)] = 0.0
    regression_factor: Annotated[float, Range(above=1)] = 1.5
    baseline_size: Annotated[int, Range(min=1, max=100_000)] = 500
    recent_size: Annotated[int, Range(min=1, max=100_000)] = 20

    def __post_init__(self) -> None:
        if self.baseline_size < self.recent_size:
            raise ValueError("baseline_size must be >= recent_size")


class LatencyDetector(BaseDetector):
    """TTFT, duration, time per output token, tokens per second and TTFT regressions per model."""

    finding_names = ("ttft", "duration", "time_per_output_token", "tokens_per_second", "latency_regression")

    def __init__(self, *, context: DetectorContext | None = None, **options: Any) -> None:
        self.options = opts = build(LatencyOptions, options, path=("options",))
        self.ttft_threshold_s = opts.ttft_threshold_s
        self.duration_threshold_s = opts.duration_threshold_s
        self.tpot_threshold_s = opts.tpot_threshold_s
        self.min_tokens_per_s = opts.min_tokens_per_s
        self.regression_factor = opts.regression_factor
        self.baseline_size = opts.baseline_size
        self.recent_size = opts.recent_size
        self._history: dict[str, deque[float]] = {}

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        if not exchange.ok:
            return []
        out: list[Finding] = []
        if exchange.ttft_s is not None:
            out.append(self._threshold("ttft", exchange.ttft_s, self.ttft_threshold_s))
            regression = self._regression(exchange.model or "", exchange.ttft_s)
            if regression is not None:
                out.append(regression)
        if exchange.duration_s is not None:
            out.append(self._threshold("duration", exchange.duration_s, self.duration_threshold_s))
        if exchange.tpot_s is not None:
            out.append(self._threshold("time_per_output_token", exchange.tpot_s, self.tpot_threshold_s))
        tokens = exchange.usage.output_tokens
        if tokens and exchange.duration_s and exchange.ttft_s is not None and exchange.duration_s > exchange.ttft_s:
            rate = tokens / (exchange.duration_s - exchange.ttft_s) if tokens > 1 else 0.0
            if rate > 0:
                slow = self.min_tokens_per_s > 0 and rate < self.min_tokens_per_s
                out.append(
                    Finding(
                        name="tokens_per_second", score=rate, label="slow" if slow else "ok", attributes={"unit": "1/s"}
                    )
                )
        return out

    @staticmethod
    def _threshold(name: str, value: float, threshold: float) -> Finding:
        slow = value > threshold
        return Finding(
            name=name,
            score=value,
            label="slow" if slow else "ok",
            explanation=f"{name} {value:.3f}s {'>' if slow else '<='} threshold {threshold:g}s",
            attributes={"unit": "s", "threshold": threshold},
        )

    def _regression(self, model: str, ttft: float) -> Finding | None:
        hist = self._history.setdefault(model, deque(maxlen=self.baseline_size))
        hist.append(ttft)
        if len(hist) < self.baseline_size:
            return None
        values = list(hist)
        baseline = statistics.median(values[: -self.recent_size])
        recent = statistics.median(values[-self.recent_size :])
        if baseline <= 0:
            return None
        ratio = recent / baseline
        regressed = ratio > self.regression_factor
        return Finding(
            name="latency_regression",
            score=ratio,
            label="regressed" if regressed else "ok",
            explanation=f"median TTFT of the last {self.recent_size} is {ratio:.2f}x the baseline median",
            attributes={"baseline_s": baseline, "recent_s": recent},
        )
