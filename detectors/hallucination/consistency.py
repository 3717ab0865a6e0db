"""Self-consistency for answers without grounding context: re-ask the upstream, compare the answers.

With nothing to check an answer against, one signal is left: ask the same
question again at a higher temperature and see whether the model says the same
thing (SelfCheckGPT's idea). For a sampled share of no-context exchanges,
within a daily budget of extra upstream calls, `SelfConsistency` re-sends the
conversation `samples` times, embeds the original answer and the samples with
MiniLM and scores inconsistency = 1 - mean cosine(original, sample).

The extra requests carry the probe header of `detectors.bias.probes`
(`x-genai-sre-probe: 1`): when they pass through the sidecar its proxy marks
them as probes, no user SLI counts them (detectors still score them), and
probe exchanges are never checked again.
The API key is read from the named environment variable at call time and is
never kept, logged or exported. Failures (upstream down, 4xx/5xx, bad JSON,
the deadline) are counted and logged once per interval, never raised.

The budget counts upstream calls per UTC day of the injected clock, in memory:
a restart starts the day's count again.

In a sidecar the detector does not wait for the check: `detect()` returns the
risk finding at once, and the check's finding reaches the sinks later as a
supplement `Evaluation` of the same exchange (`DetectorContext.emit`), so the
pipeline never stalls on an upstream. Without `emit` (the detector used on its
own) `detect()` awaits the check and returns both findings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np

from detectors.common.upstream import answer_text
from detectors.hallucination.grounding import grounding
from genai_sre import probe_headers
from genai_sre.events import Exchange, Finding
from genai_sre.telemetry.metrics import Metrics

if TYPE_CHECKING:  # importing detectors.bias at run time would load its whole package (sklearn, pandas, vader)
    from detectors.common.embedding import Embedder

__all__ = ["CONSISTENCY_METRICS", "FINDING_NAME", "SelfConsistency", "SelfConsistencyConfig", "ungrounded"]

logger = logging.getLogger(__name__)

FINDING_NAME = "hallucination_self_consistency"
CONSISTENCY_METRICS = ("genai_sre_self_consistency_checks", "genai_sre_self_consistency_requests")
_DAY_S = 86400
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SelfConsistencyConfig:
    """The `self_consistency:` options of the hallucination detector (documented in configs/sidecar.yaml)."""

    enabled: bool = False
    url: str | None = None
    openai_path: str = "/v1/chat/completions"
    anthropic_path: str = "/v1/messages"
    api_key_env: str | None = None
    sample_rate: float = 0.05
    daily_budget: int = 300
    samples: int = 3
    temperature: float = 1.0
    max_tokens: int = 256
    timeout_s: float = 4.0
    threshold: float = 0.3

    def __post_init__(self) -> None:
        if self.enabled and not self.url:
            raise ValueError("url is required when enabled (the upstream base URL, e.g. https://api.openai.com)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s)://host[:port], got {self.url!r}")
        for key, path in (("openai_path", self.openai_path), ("anthropic_path", self.anthropic_path)):
            if not path.startswith("/"):
                raise ValueError(f"{key} must start with '/', got {path!r}")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ValueError("api_key_env must be the NAME of an environment variable (the key itself goes there)")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], got {self.sample_rate}")
        if self.daily_budget < 0:
            raise ValueError(f"daily_budget must be >= 0, got {self.daily_budget}")
        if not 1 <= self.samples <= 10:
            raise ValueError(f"samples must be within 1..10, got {self.samples}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within [0, 2], got {self.temperature}")
        if self.max_tokens < 1 or self.timeout_s <= 0:
            raise ValueError("max_tokens must be >= 1 and timeout_s > 0")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be within (0, 1], got {self.threshold}")


@dataclass(frozen=True, slots=True)
class ConsistencyResult:
    """Cosine of the original answer to each usable sample; `failed` samples did not come back."""

    similarities: tuple[float, ...]
    failed: int

    @property
    def consistency(self) -> float:
        return min(1.0, max(0.0, float(np.mean(self.similarities))))


def ungrounded(exchange: Exchange) -> bool:
    """True when the exchange takes the no-context path (`grounding.py`): a question, nothing to check it against."""
    return bool(exchange.question.strip()) and not grounding(exchange).grounded


class SelfConsistency:
    """`start(exchange)` decides (sampling, one check at a time, budget) and runs the check as a task."""

    def __init__(
        self,
        config: SelfConsistencyConfig,
        embedder: Embedder,
        *,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        environ: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        log_interval_s: float = 60.0,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.clock = clock
        self.log_interval_s = log_interval_s
        self._environ = os.environ if environ is None else environ
        self._rng = rng or random.Random()
        self._checks = metrics.counter("genai_sre_self_consistency_checks") if metrics is not None else None
        self._requests = metrics.counter("genai_sre_self_consistency_requests") if metrics is not None else None
        self._day = -1
        self._used = 0
        self._busy = False
        self._last_log = float("-inf")
        self._unlogged = 0
        self.counts: dict[str, int] = {}

    @property
    def budget_left(self) -> int:
        day = int(self.clock() // _DAY_S)
        if day != self._day:
            self._day, self._used = day, 0
        return max(0, self.config.daily_budget - self._used)

    def start(self, exchange: Exchange, grounded: bool | None = None) -> asyncio.Task[Finding | None] | None:
        """The running check of this exchange, or None when it gets none (not eligible, sampled out, skipped).

        `grounded`: the detector's own verdict (its configured grounding roles); None decides by the defaults.
        """
        if not self._admit(exchange, grounded):
            return None
        self._busy = True
        task = asyncio.create_task(self._checked(exchange), name="genai-sre-self-consistency")
        task.add_done_callback(self._release)  # also when cancelled before it started
        return task

    async def _checked(self, exchange: Exchange) -> Finding | None:
        try:
            return await self.check(exchange)
        finally:
            self._busy = False  # at once: a done callback would run a loop turn after an awaiting caller resumes

    def _release(self, _: asyncio.Task[Finding | None]) -> None:
        self._busy = False

    def _admit(self, exchange: Exchange, grounded: bool | None = None) -> bool:
        """True when this exchange gets a check; reserves its `samples` calls from today's budget."""
        cfg = self.config
        if not cfg.enabled or exchange.probe or not exchange.ok or exchange.operation != "chat":
            return False
        no_context = ungrounded(exchange) if grounded is None else not grounded and bool(exchange.question.strip())
        if not exchange.model or not exchange.answer.strip() or not no_context:
            return False
        if self._rng.random() >= cfg.sample_rate:
            return False
        if self._busy:
            self._count("skipped_busy")
            return False
        if self.budget_left < cfg.samples:
            self._count("skipped_budget")
            return False
        self._used += cfg.samples
        return True

    async def check(self, exchange: Exchange) -> Finding | None:
        """One admitted check within `timeout_s`: the finding, or None (counted and logged) when it failed."""
        try:
            result = await asyncio.wait_for(self._run(exchange), self.config.timeout_s)
        except TimeoutError:
            self._failed(f"no result within timeout_s={self.config.timeout_s}")
            return None
        except Exception as exc:  # noqa: BLE001  # isolation: a broken check must not cost the main finding
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        if result is None:
            return None
        self._count("checked")
        return self._finding(result)

    async def _run(self, exchange: Exchange) -> ConsistencyResult | None:
        cfg = self.config
        timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            answers = await asyncio.gather(*(self._ask(session, exchange) for _ in range(cfg.samples)))
        ok = [a for a in answers if a is not None]
        if not ok:
            self._failed(f"none of {cfg.samples} samples came back")
            return None
        vectors = await asyncio.to_thread(self.embedder.encode, [exchange.answer, *ok])
        sims = vectors[1:] @ vectors[0]
        return ConsistencyResult(tuple(round(float(s), 4) for s in sims), len(answers) - len(ok))

    def _request(self, exchange: Exchange) -> tuple[str, dict[str, str], dict[str, Any]]:
        cfg = self.config
        assert cfg.url is not None
        headers = {"content-type": "application/json", **probe_headers()}
        key = self._environ.get(cfg.api_key_env) if cfg.api_key_env else None
        turns = [(m.role, m.content) for m in exchange.messages if m.content] or [("user", exchange.question)]
        body: dict[str, Any] = {"model": exchange.model, "max_tokens": cfg.max_tokens, "temperature": cfg.temperature}
        if exchange.provider == "anthropic":
            if key:
                headers["x-api-key"] = key
            headers["anthropic-version"] = "2023-06-01"
            system = "\n\n".join(text for role, text in turns if role == "system")
            if system:
                body["system"] = system
            body["messages"] = [{"role": r, "content": t} for r, t in turns if r in ("user", "assistant")]
            return cfg.url.rstrip("/") + cfg.anthropic_path, headers, body
        if key:
            headers["authorization"] = f"Bearer {key}"
        body["messages"] = [{"role": r, "content": t} for r, t in turns]
        return cfg.url.rstrip("/") + cfg.openai_path, headers, body

    async def _ask(self, session: aiohttp.ClientSession, exchange: Exchange) -> str | None:
        url, headers, body = self._request(exchange)
        try:
            async with session.post(url, json=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            text = answer_text(raw) if status < 400 else None
            if text and text.strip():
                if self._requests is not None:
                    self._requests.labels("ok").inc()
                return text
            failure = f"HTTP {status} from {url}" if status >= 400 else f"no answer text in the response from {url}"
        if self._requests is not None:
            self._requests.labels("error").inc()
        self._log(failure)
        return None

    def _failed(self, detail: str) -> None:
        self._count("failed")
        self._log(detail)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self._checks is not None:
            self._checks.labels(outcome).inc()

    def _log(self, detail: str) -> None:
        """One warning per interval, with the number of failures it stands for."""
        key = self._environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            detail = detail.replace(key, "***")  # belt and braces: no message ever carries the key
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_log >= self.log_interval_s:
            logger.warning("self-consistency: %d failure(s) since the last report, latest: %s", self._unlogged, detail)
            self._last_log, self._unlogged = now, 0

    def _finding(self, result: ConsistencyResult) -> Finding:
        cfg = self.config
        n = len(result.similarities)
        consistency = result.consistency
        risk = 1.0 - consistency
        flagged = risk >= cfg.threshold
        return Finding(
            name=FINDING_NAME,
            score=round(risk, 6),
            label="flagged" if flagged else "pass",
            explanation=(
                f"inconsistency {risk:.2f}: mean similarity {consistency:.2f} of the answer to {n} re-sampled "
                f"answer(s) at temperature {cfg.temperature:g} (MiniLM cosine); "
                f"{'at or above' if flagged else 'below'} the threshold {cfg.threshold:.2f}"
            ),
            attributes={
                "path": "no_context",
                "consistency": round(consistency, 4),
                "min_similarity": round(min(result.similarities), 4),
                "samples": n,
                "samples_failed": result.failed,
                "temperature": cfg.temperature,
                "threshold": cfg.threshold,
            },
        )
