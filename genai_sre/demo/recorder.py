"""What the demo shows, computed from the evaluated exchanges as they come."""

from __future__ import annotations

import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from genai_sre.events import Evaluation, Finding

__all__ = ["DemoRecorder", "Flagged"]


@dataclass(frozen=True)
class Flagged:
    at: float
    exchange_id: str
    question: str
    answer: str
    score: float
    explanation: str
    features: tuple[tuple[str, float], ...]


@dataclass
class _Row:
    at: float
    ok: bool
    status: int
    ttft: float | None
    duration: float | None
    group: str | None
    risk: float | None
    refusal: bool
    upstream: str = ""


@dataclass
class DemoRecorder:
    """An `EvaluationSink` keeping rolling figures for the live view and totals for the summary."""

    clock: Callable[[], float] = time.time
    window_s: float = 30.0
    rows: deque[_Row] = field(default_factory=lambda: deque(maxlen=20000))
    flagged: deque[Flagged] = field(default_factory=lambda: deque(maxlen=5))
    totals: Counter[str] = field(default_factory=Counter)
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    disparity: dict[str, Finding] = field(default_factory=dict)

    def consume(self, evaluation: Evaluation) -> None:
        ex = evaluation.exchange
        if ex.probe:
            self.totals["probe"] += 1
            return
        if evaluation.supplement:  # later findings about an exchange counted already
            for f in evaluation.findings:
                self.findings[(f.detector, f.name, f.label or "none")] += 1
            return
        risk = None
        refusal = False
        for f in evaluation.findings:
            self.findings[(f.detector, f.name, f.label or "none")] += 1
            if f.name == "hallucination_risk" and f.score is not None:
                risk = f.score
                if f.label == "flagged":
                    self.flagged.append(
                        Flagged(ex.started_at, ex.id, ex.question, ex.answer, f.score, f.explanation, f.features[:4])
                    )
            elif f.name == "refusal" and f.label in ("refusal", "refused"):
                refusal = True
            elif f.name == "fairness_disparity":
                self.disparity[str(f.attributes.get("attribute", "group"))] = f
        group = next((v for k, v in ex.labels.items() if k.startswith("group.")), None)
        self.rows.append(
            _Row(ex.started_at, ex.ok, ex.status, ex.ttft_s, ex.duration_s, group, risk, refusal, ex.upstream)
        )
        self.totals[f"upstream:{ex.upstream}"] += 1
        self.totals["exchanges"] += 1
        self.totals["errors"] += 0 if ex.ok else 1
        self.totals["flagged"] += int(risk is not None and any(f.label == "flagged" for f in evaluation.findings))
        self.totals["scored_hallucination"] += int(risk is not None)

    def recent(self) -> list[_Row]:
        cutoff = self.clock() - self.window_s
        return [r for r in self.rows if r.at >= cutoff]

    def figures(self) -> dict[str, float]:
        rows = self.recent()
        ttfts = sorted(r.ttft for r in rows if r.ttft is not None)
        risks = [r.risk for r in rows if r.risk is not None]
        out = {
            "rps": len(rows) / self.window_s,
            "error_share": (sum(not r.ok for r in rows) / len(rows)) if rows else 0.0,
            "ttft_p50": _pct(ttfts, 0.5),
            "ttft_p95": _pct(ttfts, 0.95),
            "mean_risk": statistics.fmean(risks) if risks else 0.0,
        }
        return out

    def served_by(self) -> dict[str, int]:
        """Exchanges per upstream that answered them, over the window (fail-over moves them to the fallback)."""
        return dict(sorted(Counter(r.upstream for r in self.recent()).items()))

    def refusal_by_group(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for r in self.recent():
            if r.group is None:
                continue
            n, k = out.get(r.group, (0, 0))
            out[r.group] = (n + 1, k + int(r.refusal))
        return dict(sorted(out.items()))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]
