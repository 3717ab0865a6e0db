"""Scenario files: phases of latency, errors, stream cuts, faithfulness and refusals by group.

```yaml
name: outage
seed: 7
loop: true                  # start again after the last phase
group_header: x-user-group  # where the mock reads a request's user group (also OpenAI metadata.group)
phases:
  - name: healthy
    duration_s: 60
    ttft_s: {median: 0.15, p99: 0.6}    # lognormal
    tokens_per_s: 80
    error_rate: 0.0                      # share answered with error_status
    error_status: 503
    cut_rate: 0.0                        # share of streams cut mid-way
    invent_rate: 0.0                     # share of answers that invent facts
    refusal_rate: 0.02                   # default refusal share ...
    refusal_by_group: {group_b: 0.2}     # ... and per group value
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from genai_sre.schema import load_file

__all__ = ["Latency", "Phase", "Scenario", "load_scenario"]


@dataclass(frozen=True)
class Latency:
    median: float = 0.1
    p99: float = 0.4

    def __post_init__(self) -> None:
        if self.median < 0 or self.p99 < self.median:
            raise ValueError("latency needs 0 <= median <= p99")

    @property
    def sigma(self) -> float:
        if self.median <= 0 or self.p99 <= self.median:
            return 0.0
        return math.log(self.p99 / self.median) / 2.326


@dataclass(frozen=True)
class Phase:
    name: str
    duration_s: float = 60.0
    ttft_s: Latency = field(default_factory=Latency)
    tokens_per_s: float = 100.0
    error_rate: float = 0.0
    error_status: int = 503
    cut_rate: float = 0.0
    invent_rate: float = 0.0
    refusal_rate: float = 0.0
    refusal_by_group: Mapping[str, float] = field(default_factory=dict)
    model_version: str | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "cut_rate", "invent_rate", "refusal_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"phase {self.name!r}: {name} must be within [0, 1]")
        if self.duration_s <= 0:
            raise ValueError(f"phase {self.name!r}: duration_s must be positive")


@dataclass(frozen=True)
class Scenario:
    name: str = "default"
    seed: int = 0
    loop: bool = True
    group_header: str = "x-user-group"
    phases: tuple[Phase, ...] = (Phase(name="healthy"),)

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError("a scenario needs at least one phase")

    def phase_at(self, elapsed_s: float) -> Phase:
        total = sum(p.duration_s for p in self.phases)
        t = elapsed_s % total if self.loop else min(elapsed_s, total - 1e-9)
        for p in self.phases:
            if t < p.duration_s:
                return p
            t -= p.duration_s
        return self.phases[-1]

    def phase_named(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


def load_scenario(path: str | Path) -> Scenario:
    return load_file(path, Scenario)
