"""A detector for the soak benchmark that fails on a share of exchanges, as a buggy plugin would."""

from __future__ import annotations

import random
from collections.abc import Sequence

from genai_sre import BaseDetector, Exchange, Finding


class FlakyDetector(BaseDetector):
    def __init__(self, failure_rate: float = 0.05, seed: int = 11) -> None:
        self.failure_rate = float(failure_rate)
        self.rng = random.Random(seed)

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        if self.rng.random() < self.failure_rate:
            raise RuntimeError("flaky detector failed (on purpose)")
        return [Finding(name="answer_length", score=float(len(exchange.answer)), label="pass")]
