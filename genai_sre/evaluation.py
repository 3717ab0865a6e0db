"""Offline evaluation of a scoring detector on a labelled JSONL dataset.

The dataset contract (ARCHITECTURE.md §4) is one JSON object a line:
`{"id", "context", "question", "answer", "label", "source", "split"}`, gzipped
or not; `label` 1 means the answer contains a hallucination. This module is
generic: an `Evaluator` (found by entry point in `genai_sre.evaluators`) turns
rows into scores, and this module computes precision, recall, F1, balanced
accuracy, AUROC, the AUROC of two shortcut baselines (answer length and the
share of answer words absent from the context) and of any other scores the
evaluator attaches (`ScoredRow.others`: baselines, other stages of the same
detector), 95% bootstrap intervals for AUROC and F1 resampled over source
documents (rows that share a context move together), and throughput.

```python
rows = load_dataset(Path("bench/data/hallucination/ragtruth.jsonl.gz"), split="test")
report = evaluate(evaluator, rows)
print(report.overall.auroc)
```
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from genai_sre.errors import DatasetError

__all__ = [
    "DatasetRow",
    "Evaluator",
    "GroupMetrics",
    "Report",
    "ScoredRow",
    "auroc",
    "bootstrap_intervals",
    "evaluate",
    "group_metrics",
    "load_dataset",
    "source_key",
    "unsupported_share",
    "write_scores",
]

_FIELDS = ("id", "context", "question", "answer", "label")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class DatasetRow:
    id: str
    context: str
    question: str
    answer: str
    label: int
    source: str = ""
    split: str = ""


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One answer's score; `flagged` at the evaluation threshold, `slo_flagged` at the SLO one.

    `others`: further scores of the same answer reported next to `score` (AUROC with its interval),
    e.g. a baseline or another stage of the detector; never written by `write_scores`.
    """

    score: float
    flagged: bool
    slo_flagged: bool
    group: str = "all"
    others: tuple[tuple[str, float], ...] = ()


class Evaluator(Protocol):
    """Scores dataset rows in batches; returned in the order given."""

    def score(self, rows: Sequence[DatasetRow]) -> Sequence[ScoredRow]: ...


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    n: int
    positives: int
    precision: float
    recall: float
    f1: float
    balanced_accuracy: float
    recall_at_slo: float
    false_alarm_rate_at_slo: float
    auroc: float
    auroc_length: float
    auroc_unsupported_share: float
    auroc_ci: tuple[float, float] = (math.nan, math.nan)
    f1_ci: tuple[float, float] = (math.nan, math.nan)
    # AUROC [95% interval] of each of `ScoredRow.others`, by name.
    others: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    dataset: str
    split: str
    overall: GroupMetrics
    groups: Mapping[str, GroupMetrics]
    answers_per_s: float
    p50_ms: float
    p99_ms: float
    batch_size: int
    scores: tuple[ScoredRow, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values; NaN (a metric undefined for a group with one class) becomes null."""
        out = asdict(self)
        out.pop("scores")
        out["groups"] = {k: asdict(v) for k, v in self.groups.items()}
        return {k: _no_nan(v) for k, v in out.items()}


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def _open(path: Path) -> Iterable[str]:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        with gzip.open(path, "rt", encoding="utf-8") as text:
            yield from text
    else:
        with path.open(encoding="utf-8") as text:
            yield from text


def load_dataset(path: Path, split: str | None = None) -> list[DatasetRow]:
    """Read a contract JSONL file (gzip detected by content). `split=None` keeps every row.

    Raises:
        DatasetError: naming the file and line of the first row that breaks the contract.
    """
    if not path.is_file():
        raise DatasetError(f"Dataset {path} does not exist.")
    rows: list[DatasetRow] = []
    try:
        for lineno, line in enumerate(_open(path), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object")
            missing = [k for k in _FIELDS if k not in obj]
            if missing:
                raise DatasetError(f"{path}:{lineno}: missing key(s) {', '.join(missing)}")
            if obj["label"] not in (0, 1):
                raise DatasetError(f"{path}:{lineno}: label must be 0 or 1, got {obj['label']!r}")
            row_split = str(obj.get("split") or "")
            if split is not None and row_split != split:
                continue
            rows.append(
                DatasetRow(
                    id=str(obj["id"]),
                    context=str(obj["context"] or ""),
                    question=str(obj["question"] or ""),
                    answer=str(obj["answer"] or ""),
                    label=int(obj["label"]),
                    source=str(obj.get("source") or ""),
                    split=row_split,
                )
            )
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Cannot read dataset {path}: {exc}") from exc
    return rows


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks); NaN with one class only."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j) / 2 + 1
        rank_sum += avg_rank * sum(lab for _, lab in pairs[i : j + 1])
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def source_key(row: DatasetRow) -> str:
    """The source document a row's answer was written from: rows with the same context share it."""
    return hashlib.sha1(row.context.encode("utf-8", "replace")).hexdigest()


def _auroc_np(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _f1_np(y: np.ndarray, flagged: np.ndarray) -> float:
    tp = int((y & flagged).sum())
    fp = int((~y.astype(bool) & flagged.astype(bool)).sum())
    pos = int(y.sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, pos)
    return _ratio(2 * precision * recall, precision + recall)


def bootstrap_intervals(
    keys: Sequence[str],
    labels: Sequence[int],
    scores: Mapping[str, Sequence[float]],
    flagged: Sequence[bool] | None = None,
    *,
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals, resampling whole source documents (`keys`) with replacement.

    Returns `{name: (low, high)}` for the AUROC of each of `scores` and, given `flagged`, `"f1"`.
    Answers written from one document are not independent (one hard document sinks all of its
    answers), so the document, not the answer, is the unit that is resampled.
    """
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    members = [np.array(v) for v in groups.values()]
    y = np.asarray(labels, dtype=np.int64)
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in scores.items()}
    flags = np.asarray(flagged, dtype=np.int64) if flagged is not None else None
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {name: [] for name in [*arrays, *(["f1"] if flags is not None else [])]}
    for _ in range(replicates if members else 0):
        idx = np.concatenate([members[rng.randrange(len(members))] for _ in members])
        for name, s in arrays.items():
            draws[name].append(_auroc_np(y[idx], s[idx]))
        if flags is not None:
            draws["f1"].append(_f1_np(y[idx], flags[idx]))
    tail = (1 - level) / 2 * 100
    out: dict[str, tuple[float, float]] = {}
    for name, values in draws.items():
        finite = [v for v in values if not math.isnan(v)]
        if len(finite) < max(10, replicates // 2):
            out[name] = (math.nan, math.nan)
        else:
            lo, hi = np.percentile(finite, [tail, 100 - tail])
            out[name] = (float(lo), float(hi))
    return out


def unsupported_share(context: str, question: str, answer: str) -> float:
    """Shortcut baseline: the share of answer words (lower-case, alphanumeric) absent from the request."""
    seen = set(_WORD.findall(f"{context} {question}".lower()))
    words = _WORD.findall(answer.lower())
    return sum(1 for w in words if w not in seen) / len(words) if words else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def group_metrics(rows: Sequence[DatasetRow], scored: Sequence[ScoredRow], bootstrap: int = 0) -> GroupMetrics:
    """Metrics of one group; `bootstrap` > 0 adds 95% intervals from that many document resamples."""
    y = [r.label for r in rows]
    tp = sum(1 for r, s in zip(rows, scored, strict=True) if r.label and s.flagged)
    fp = sum(1 for r, s in zip(rows, scored, strict=True) if not r.label and s.flagged)
    pos = sum(y)
    neg = len(y) - pos
    tn = neg - fp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, pos)
    slo_tp = sum(1 for r, s in zip(rows, scored, strict=True) if r.label and s.slo_flagged)
    slo_fp = sum(1 for r, s in zip(rows, scored, strict=True) if not r.label and s.slo_flagged)
    other_scores: dict[str, list[float]] = {}
    for s in scored:
        for name, value in s.others:
            other_scores.setdefault(name, []).append(value)
    other_scores = {k: v for k, v in other_scores.items() if len(v) == len(scored)}
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap > 0:
        intervals = bootstrap_intervals(
            [source_key(r) for r in rows], y, {"": [s.score for s in scored], **other_scores},
            [s.flagged for s in scored], replicates=bootstrap,
        )  # fmt: skip
    nan2 = (math.nan, math.nan)
    return GroupMetrics(
        n=len(rows),
        positives=pos,
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        balanced_accuracy=(recall + _ratio(tn, neg)) / 2,
        recall_at_slo=_ratio(slo_tp, pos),
        false_alarm_rate_at_slo=_ratio(slo_fp, neg),
        auroc=auroc(y, [s.score for s in scored]),
        auroc_length=auroc(y, [float(len(r.answer.split())) for r in rows]),
        auroc_unsupported_share=auroc(y, [unsupported_share(r.context, r.question, r.answer) for r in rows]),
        auroc_ci=intervals.get("", nan2),
        f1_ci=intervals.get("f1", nan2),
        others={k: (auroc(y, v), *intervals.get(k, nan2)) for k, v in other_scores.items()},
    )


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def evaluate(
    evaluator: Evaluator,
    rows: Sequence[DatasetRow],
    *,
    dataset: str = "",
    split: str = "",
    batch_size: int = 32,
    latency_sample: int = 200,
    bootstrap: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Score `rows` in batches (throughput) and a sample one at a time (per-answer latency).

    `bootstrap`: document resamples for the 95% intervals of AUROC and F1 (0: none).

    Raises:
        DatasetError: when `rows` is empty.
    """
    if not rows:
        raise DatasetError(f"No rows to evaluate in {dataset or 'the dataset'} (split {split or 'any'}).")
    scored: list[ScoredRow] = []
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        scored.extend(evaluator.score(batch))
        if progress is not None:
            progress(len(batch))
    elapsed = time.perf_counter() - t0
    step = max(1, len(rows) // max(latency_sample, 1))
    latencies: list[float] = []
    for row in rows[::step][:latency_sample]:
        t = time.perf_counter()
        evaluator.score([row])
        latencies.append((time.perf_counter() - t) * 1000)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(scored):
        groups.setdefault(s.group, []).append(i)
    return Report(
        dataset=dataset,
        split=split,
        overall=group_metrics(rows, scored, bootstrap),
        groups={
            g: group_metrics([rows[i] for i in idx], [scored[i] for i in idx], bootstrap)
            for g, idx in sorted(groups.items())
        },
        answers_per_s=len(rows) / elapsed if elapsed > 0 else float("inf"),
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        batch_size=batch_size,
        scores=tuple(scored),
    )


def write_scores(path: Path, rows: Sequence[DatasetRow], scored: Sequence[ScoredRow]) -> None:
    """One `{"id", "score", "flagged"}` line per answer, so anyone can recompute the metrics."""
    with path.open("w", encoding="utf-8") as fh:
        for r, s in zip(rows, scored, strict=True):
            fh.write(json.dumps({"id": r.id, "score": round(s.score, 6), "flagged": s.flagged}) + "\n")
