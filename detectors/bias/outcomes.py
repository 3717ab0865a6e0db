"""What happened to one exchange, as numbers comparable across groups.

Outcomes: refusal (bool), sentiment (VADER compound score in [-1, 1], a
lexicon that works offline), answer length in words, latency (seconds, the
exchange duration), and hallucination risk when an outcome source provides it.
The bias detector sees only the exchange, so a risk score computed by another
detector reaches it through an optional `RiskSource` callable (the app wiring
may pass one that reads the hallucination detector's finding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from detectors.common.refusal import RefusalClassifier
from genai_sre.events import Exchange

__all__ = ["METRICS", "MetricName", "OutcomeMeter", "Outcomes", "RiskSource"]

MetricName = Literal["refusal", "sentiment", "length", "latency", "hallucination_risk"]
METRICS: tuple[MetricName, ...] = ("refusal", "sentiment", "length", "latency", "hallucination_risk")

RiskSource = Callable[[Exchange], float | None]

_SENTIMENT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Outcomes:
    refused: bool
    sentiment: float
    length: int
    latency_s: float | None = None
    hallucination_risk: float | None = None

    def value(self, metric: MetricName) -> float | None:
        if metric == "refusal":
            return 1.0 if self.refused else 0.0
        if metric == "sentiment":
            return self.sentiment
        if metric == "length":
            return float(self.length)
        if metric == "latency":
            return self.latency_s
        return self.hallucination_risk


class OutcomeMeter:
    """Measures `Outcomes` of an exchange (sync; VADER costs well under a millisecond per answer)."""

    def __init__(self, refusal: RefusalClassifier | None = None, risk_source: RiskSource | None = None) -> None:
        self.refusal = refusal or RefusalClassifier()
        self.risk_source = risk_source
        self._vader = SentimentIntensityAnalyzer()

    def sentiment(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return float(self._vader.polarity_scores(text[:_SENTIMENT_CHARS])["compound"])

    def measure(self, exchange: Exchange) -> Outcomes:
        return self.measure_answer(exchange, self.risk(exchange))

    def risk(self, exchange: Exchange) -> float | None:
        """The hallucination risk from the risk source (call it where the source may be read)."""
        return self.risk_source(exchange) if self.risk_source is not None else None

    def measure_answer(self, exchange: Exchange, risk: float | None = None) -> Outcomes:
        """Everything but the risk: pure functions of the exchange, safe to run in a worker thread."""
        answer = exchange.answer
        refused = self.refusal.classify(answer, exchange.finish_reason).refused
        return Outcomes(
            refused=refused,
            sentiment=self.sentiment(answer),
            length=len(answer.split()),
            latency_s=exchange.duration_s,
            hallucination_risk=risk,
        )
