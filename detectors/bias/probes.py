"""Counterfactual probes: the same prompt with each group's terms, sent on a schedule within a budget.

Like a blackbox prober, `ProbeRunner` actively asks the model the questions
of `configs/probes.yaml` once per group (a name, pronouns, a nationality
swapped in), compares the answers (refusal, VADER sentiment, length, and
MiniLM embedding distance when enabled) and records the disparity per
template as metrics. Requests carry `x-genai-sre-probe: 1`, so when they go
through the sidecar (the default URL is its own proxy port) the proxy marks
the exchanges `probe=True` and no user SLI counts them. Credentials come from
the environment variable the config names, never from the file.

The daily budget counts requests per UTC day of the injected clock; a
template is only sent when the whole set of its groups fits the budget left.
The count lives in memory: a restart starts the day's count again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import numpy as np

from detectors.bias.outcomes import OutcomeMeter
from detectors.bias.probe_config import Counterfactual, ProbeConfig, ProbeTemplate, counterfactuals, load_probes
from detectors.common.embedding import Embedder, load_embedder
from detectors.common.upstream import answer_text
from genai_sre import probe_headers
from genai_sre.telemetry.metrics import Metrics

__all__ = ["ProbeAnswer", "ProbeReport", "ProbeResult", "ProbeRunner"]

logger = logging.getLogger(__name__)

_DAY_S = 86400


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    group: str
    prompt: str
    status: int
    answer: str = ""
    refused: bool = False
    sentiment: float = 0.0
    length: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    template: str
    attribute: str
    answers: tuple[ProbeAnswer, ...]
    disparity: Mapping[str, float]
    flagged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeReport:
    started_at: float
    results: tuple[ProbeResult, ...] = ()
    sent: int = 0
    errors: int = 0
    skipped_for_budget: tuple[str, ...] = ()
    budget_left: int = 0
    day: int = 0
    notes: tuple[str, ...] = field(default=())


ClientFactory = Callable[[], aiohttp.ClientSession]


class ProbeRunner:
    """Sends counterfactual probe sets; `run_once()` for one round, `run_forever(stop)` on the interval."""

    def __init__(
        self,
        config: ProbeConfig,
        clock: Callable[[], float] = time.time,
        http_client_factory: ClientFactory | None = None,
        *,
        metrics: Metrics | None = None,
        meter: OutcomeMeter | None = None,
        embedder: Embedder | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._factory = http_client_factory or self._default_factory
        self.meter = meter or OutcomeMeter()
        self.embedder = embedder
        self._environ = os.environ if environ is None else environ
        self._cycle = itertools.cycle(config.templates) if config.templates else None
        self._day = -1
        self._used = 0
        self._gauge = metrics.gauge("genai_sre_probe_disparity") if metrics is not None else None
        self._counter = metrics.counter("genai_sre_probe_requests") if metrics is not None else None

    @classmethod
    def from_file(
        cls, path: str, clock: Callable[[], float] = time.time, metrics: Metrics | None = None
    ) -> ProbeRunner:
        """A runner for a `probes.yaml` (errors name the file, line and key), embedding loaded when enabled."""
        config = load_probes(path)
        embedder = load_embedder() if config.embedding else None
        return cls(config, clock, metrics=metrics, embedder=embedder)

    @staticmethod
    def check_file(path: str) -> None:
        """Validate a `probes.yaml` without loading anything else (for `genai-sre check-config`)."""
        load_probes(path)

    def _default_factory(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))

    @property
    def budget_left(self) -> int:
        self._roll_day()
        return max(0, self.config.daily_budget - self._used)

    def _roll_day(self) -> None:
        day = int(self.clock() // _DAY_S)
        if day != self._day:
            self._day, self._used = day, 0

    async def run_once(self) -> ProbeReport:
        """Send up to `templates_per_run` templates (round-robin) whose whole set fits the budget."""
        started = self.clock()
        if self._cycle is None or not self.config.enabled:
            return ProbeReport(started, budget_left=self.budget_left, notes=("no templates or disabled",))
        results: list[ProbeResult] = []
        skipped: list[str] = []
        sent = errors = 0
        async with self._factory() as session:
            for _ in range(min(self.config.templates_per_run, len(self.config.templates))):
                template = next(self._cycle)
                cases = counterfactuals(self.config, template)
                if self.budget_left < len(cases):
                    skipped.append(template.id)
                    self._count("budget", len(cases))
                    continue
                self._used += len(cases)
                answers = await asyncio.gather(*(self._ask(session, c) for c in cases))
                sent += len(answers)
                errors += sum(1 for a in answers if a.error is not None)
                # Scoring (VADER, MiniLM) is CPU work: a worker thread, never the event loop.
                results.append(await asyncio.to_thread(self._compare, template, answers))
        return ProbeReport(started, tuple(results), sent, errors, tuple(skipped), self.budget_left, self._day)

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """`run_once()` every `interval_s` until `stop_event` is set; a failed round is logged, not fatal."""
        while not stop_event.is_set():
            try:
                report = await self.run_once()
                logger.info("probe round: %s sent, %s errors, budget left %s", report.sent, report.errors,
                            report.budget_left)
            except Exception:  # isolation boundary: a broken round must not stop the prober
                logger.exception("probe round failed")
            try:
                await asyncio.wait_for(stop_event.wait(), timeout=self.config.interval_s)
            except TimeoutError:
                pass

    # --- one request ------------------------------------------------------------------------------

    def _request(self, case: Counterfactual) -> tuple[dict[str, str], dict[str, Any]]:
        cfg = self.config
        headers = {"content-type": "application/json", **probe_headers()}
        key = self._environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if cfg.api_format == "anthropic":
            if key:
                headers["x-api-key"] = key
            headers["anthropic-version"] = "2023-06-01"
            body: dict[str, Any] = {
                "model": cfg.model, "max_tokens": cfg.max_tokens, "temperature": cfg.temperature,
                "messages": [{"role": "user", "content": case.prompt}],
            }
            if case.system:
                body["system"] = case.system
            return headers, body
        if key:
            headers["authorization"] = f"Bearer {key}"
        messages = ([{"role": "system", "content": case.system}] if case.system else []) + [
            {"role": "user", "content": case.prompt}
        ]
        return headers, {"model": cfg.model, "messages": messages, "max_tokens": cfg.max_tokens,
                         "temperature": cfg.temperature}

    async def _ask(self, session: aiohttp.ClientSession, case: Counterfactual) -> ProbeAnswer:
        headers, body = self._request(case)
        url = self.config.url.rstrip("/") + self.config.path
        try:
            async with session.post(url, json=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count("error")
            return ProbeAnswer(case.group, case.prompt, 0, error=f"{type(exc).__name__}: {exc}")
        if status >= 400:
            self._count("error")
            return ProbeAnswer(case.group, case.prompt, status, error=f"HTTP {status}")
        text = answer_text(raw)
        if text is None:
            self._count("error")
            return ProbeAnswer(case.group, case.prompt, status, error="response has no answer text")
        self._count("ok")
        return ProbeAnswer(case.group, case.prompt, status, text, length=len(text.split()))

    def _count(self, outcome: str, n: int = 1) -> None:
        if self._counter is not None:
            self._counter.labels(outcome).inc(n)

    # --- comparing a set --------------------------------------------------------------------------

    def _score(self, answer: ProbeAnswer) -> ProbeAnswer:
        refused = self.meter.refusal.classify(answer.answer).refused
        return replace(answer, refused=refused, sentiment=self.meter.sentiment(answer.answer))

    def _compare(self, template: ProbeTemplate, answers: list[ProbeAnswer]) -> ProbeResult:
        """Score the answers (refusal, sentiment) and compare them; runs in a worker thread."""
        answers = [a if a.error is not None else self._score(a) for a in answers]
        ok = [a for a in answers if a.error is None]
        disparity: dict[str, float] = {}
        if len(ok) >= 2:
            refusals = [1.0 if a.refused else 0.0 for a in ok]
            sentiments = [a.sentiment for a in ok]
            lengths = [a.length for a in ok]
            disparity["refusal"] = max(refusals) - min(refusals)
            disparity["sentiment"] = max(sentiments) - min(sentiments)
            disparity["length"] = 1.0 - min(lengths) / max(lengths) if max(lengths) > 0 else 0.0
            if self.embedder is not None and self.config.embedding:
                vectors = self.embedder.encode([a.answer for a in ok])
                sims = vectors @ vectors.T
                disparity["embedding"] = float(1.0 - np.min(sims))
        for metric, value in disparity.items():
            if self._gauge is not None:
                self._gauge.labels(template.id, metric).set(value)
        flagged = tuple(m for m, v in disparity.items() if v >= self.config.thresholds.get(m, float("inf")))
        return ProbeResult(template.id, template.attribute, tuple(answers), disparity, flagged)

