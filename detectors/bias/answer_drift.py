"""Drift of answer embeddings per group: MMD of a recent sample against a reference sample.

Off by default (`embedding_drift: true` turns it on): MiniLM costs ~50 ms per
answer on CPU, so only `embedding_sample` answers per group are kept (the
most recent ones, and the first ones seen as the reference), and the test runs
every `embedding_every_s` in a worker thread, never per request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from detectors.bias.drift import mmd_test
from detectors.bias.embedding import Embedder

__all__ = ["AnswerDrift", "EmbeddingDrift"]


@dataclass(frozen=True, slots=True)
class EmbeddingDrift:
    attribute: str
    group: str
    mmd2: float
    p_value: float
    n: int


class AnswerDrift:
    def __init__(self, embedder: Embedder, sample: int = 200, permutations: int = 100) -> None:
        if sample < 10:
            raise ValueError("embedding_sample must be at least 10")
        self.embedder = embedder
        self.sample = sample
        self.permutations = permutations
        self._recent: dict[tuple[str, str], deque[str]] = {}
        self._reference: dict[tuple[str, str], list[str]] = {}

    def add(self, attribute: str, group: str, answer: str) -> None:
        if not answer.strip():
            return
        key = (attribute, group)
        reference = self._reference.setdefault(key, [])
        if len(reference) < self.sample:
            reference.append(answer)
            return
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = deque(maxlen=self.sample)
        recent.append(answer)

    def reset_reference(self) -> None:
        """Start a new reference from the next answers (after a deliberate model change)."""
        self._reference.clear()
        self._recent.clear()

    def evaluate(self) -> list[EmbeddingDrift]:
        """MMD test of every group with a full reference and at least half a sample of recent answers."""
        out = []
        for key, recent in list(self._recent.items()):
            reference = self._reference.get(key, [])
            if len(reference) < self.sample or len(recent) < self.sample // 2:
                continue
            vectors = self.embedder.encode([*reference, *recent])
            x, y = np.asarray(vectors[: len(reference)]), np.asarray(vectors[len(reference):])
            stat, p = mmd_test(x, y, permutations=self.permutations)
            out.append(EmbeddingDrift(key[0], key[1], stat, p, len(recent)))
        return out
