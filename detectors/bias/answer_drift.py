"""Drift of answer embeddings per group: MMD of a recent sample against a reference sample.

Off by default (`embedding_drift: true` turns it on): MiniLM costs milliseconds per answer on CPU.
Answers are sampled at most once every `every_s / sample` seconds per group, whatever the traffic,
so each group's reference (its first `sample` sampled answers) and its recent sample (the latest
`sample`) cost a bounded amount of embedding per period.

The work is split so that nothing heavy runs on the event loop: `add()` (on the loop) only keeps
texts; `snapshot()` (on the loop) copies what the next evaluation needs into an immutable job;
`run(job)` (in a worker thread) embeds the texts not embedded yet and runs the MMD permutation
tests; `merge(result)` (on the loop) keeps the new vectors. Texts are embedded once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.bias.drift import mmd_test
from detectors.common.embedding import Embedder

__all__ = ["AnswerDrift", "DriftJob", "DriftResult", "EmbeddingDrift"]

Vector = npt.NDArray[np.float64]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class EmbeddingDrift:
    attribute: str
    group: str
    mmd2: float
    p_value: float
    n: int


@dataclass(frozen=True, slots=True)
class _Sample:
    """One group's embedded reference and recent answers as (sequence number, text, vector)."""

    key: Key
    reference: tuple[tuple[int, str, Vector], ...]
    recent: tuple[tuple[int, str, Vector], ...]


@dataclass(frozen=True, slots=True)
class DriftJob:
    texts: tuple[tuple[int, str], ...]
    samples: tuple[_Sample, ...]
    permutations: int


@dataclass(frozen=True, slots=True)
class DriftResult:
    vectors: dict[int, Vector]
    drift: tuple[EmbeddingDrift, ...]
    embedded: int
    tested: bool


class AnswerDrift:
    def __init__(
        self,
        embedder: Embedder,
        sample: int = 200,
        permutations: int = 100,
        every_s: float = 900.0,
        max_texts: int = 256,
    ) -> None:
        if sample < 10:
            raise ValueError("embedding_sample must be at least 10")
        self.embedder = embedder
        self.sample = sample
        self.permutations = permutations
        self.spacing_s = every_s / sample
        self.max_texts = max_texts
        self._seq = 0
        self._last_at: dict[Key, float] = {}
        self._reference: dict[Key, list[tuple[int, str]]] = {}
        self._recent: dict[Key, deque[tuple[int, str]]] = {}
        self._vectors: dict[int, Vector] = {}

    def add(self, attribute: str, group: str, answer: str, at: float | None = None) -> bool:
        """Keep `answer` as a sample of its group (False when thinned out or empty)."""
        if not answer.strip():
            return False
        key = (attribute, group)
        if at is not None:
            last = self._last_at.get(key)
            if last is not None and at - last < self.spacing_s:
                return False
            self._last_at[key] = at
        self._seq += 1
        item = (self._seq, answer)
        reference = self._reference.setdefault(key, [])
        if len(reference) < self.sample:
            reference.append(item)
            return True
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = deque(maxlen=self.sample)
        if len(recent) == recent.maxlen:
            self._vectors.pop(recent[0][0], None)  # the oldest leaves the sample: its vector is not needed
        recent.append(item)
        return True

    def reset_reference(self) -> None:
        """Start a new reference from the next answers (after a deliberate model change)."""
        self._reference.clear()
        self._recent.clear()
        self._vectors.clear()
        self._last_at.clear()

    def snapshot(self, test: bool = True) -> DriftJob | None:
        """What the next background evaluation needs, copied (None when there is nothing to do).

        The job embeds up to `max_texts` sampled texts that have no vector yet; with `test` it also
        tests every group whose reference is embedded against its embedded recent answers (at least
        half a sample), so answers arriving meanwhile never hold a test back.
        """
        missing: list[tuple[int, str]] = []
        for key, reference in self._reference.items():
            items = [*reference, *self._recent.get(key, ())]
            missing.extend((s, t) for s, t in items if s not in self._vectors)
        samples: list[_Sample] = []
        if test:
            for key, recent in self._recent.items():
                reference = self._reference.get(key, [])
                embedded = [(s, t) for s, t in recent if s in self._vectors]
                if len(reference) < self.sample or len(embedded) < self.sample // 2:
                    continue
                if any(s not in self._vectors for s, _ in reference):
                    continue  # its reference is still being embedded
                samples.append(
                    _Sample(
                        key,
                        tuple((s, t, self._vectors[s]) for s, t in reference),
                        tuple((s, t, self._vectors[s]) for s, t in embedded),
                    )
                )
        if not missing and not samples:
            return None
        return DriftJob(tuple(missing[: self.max_texts]), tuple(samples), self.permutations)

    def run(self, job: DriftJob) -> DriftResult:
        """Embed the job's texts and test its groups. Thread-safe: reads only the job and the embedder."""
        vectors: dict[int, Vector] = {}
        if job.texts:
            encoded = np.asarray(self.embedder.encode([t for _, t in job.texts]), dtype=np.float64)
            vectors = {s: encoded[i] for i, (s, _) in enumerate(job.texts)}
        out = []
        for sample in job.samples:
            ref = np.vstack([v for _, _, v in sample.reference])
            cur = np.vstack([v for _, _, v in sample.recent])
            stat, p = mmd_test(ref, cur, permutations=job.permutations)
            out.append(EmbeddingDrift(sample.key[0], sample.key[1], stat, p, len(cur)))
        return DriftResult(vectors, tuple(out), len(job.texts), bool(job.samples))

    def merge(self, result: DriftResult) -> list[EmbeddingDrift]:
        """Keep the vectors of texts still sampled; return the tests' results."""
        live = {s for items in self._reference.values() for s, _ in items}
        live |= {s for items in self._recent.values() for s, _ in items}
        for s, v in result.vectors.items():
            if s in live:
                self._vectors[s] = v
        return list(result.drift)

    def evaluate(self) -> list[EmbeddingDrift]:
        """Embed everything sampled and test, in the calling thread (replays and tests)."""
        while (job := self.snapshot(test=False)) is not None:
            self.merge(self.run(job))
        job = self.snapshot(test=True)
        return self.merge(self.run(job)) if job is not None else []
