"""The async detector: adaptive batching across concurrent `detect()` calls, scoring in a worker.

While a batch is being scored, new exchanges wait in a list; when the worker
is free, everything waiting (up to `batch_size`) goes as the next batch. A lone
exchange is scored at once, a burst is scored in batches, and the event loop
only appends to a list and resolves futures.

`executor="thread"` (default) runs the scorer in one worker thread; the
feature code is pure Python and holds the GIL, so the loop waits up to one
switch interval (5 ms) at a time while a batch runs. `executor="process"` runs
it in a spawned worker process: the loop stays free at the price of pickling
the texts and a second interpreter (bench/hallucination_speed.py measures both).

With `self_consistency` enabled, a sampled answer without grounding context
also gets a `hallucination_self_consistency` finding (see `consistency.py`).
Detectors can only return findings from `detect()`, so `detect()` waits for
that check, which runs concurrently with the scoring and is abandoned after its
own `timeout_s`: keep that below the detector's runner timeout, or the runner
drops the main finding with it. The wait happens in the pipeline worker, never
on the request path, but the worker's batch waits with it and the pipeline
charges that wall time to its CPU budget.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import multiprocessing
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from detectors.common.refusal import RefusalClassifier
from detectors.hallucination.grounding import GROUNDING_ROLES, MIN_CONTEXT_WORDS, grounding
from detectors.hallucination.scorer import HallucinationScorer, RiskResult, ScoreInput
from genai_sre.detection.base import BaseDetector
from genai_sre.errors import ConfigError
from genai_sre.events import Evaluation, Finding, Span
from genai_sre.schema import Document, build

if TYPE_CHECKING:
    from detectors.common.embedding import Embedder
    from detectors.hallucination.cascade import Cascade
    from detectors.hallucination.consistency import SelfConsistency
    from genai_sre.detection.base import DetectorContext
    from genai_sre.events import Exchange

__all__ = ["FINDING_NAME", "HallucinationDetector", "HallucinationOptions", "to_finding"]

logger = logging.getLogger(__name__)

FINDING_NAME = "hallucination_risk"
_worker_scorer: HallucinationScorer | None = None


def _init_worker(
    model_path: str | None,
    explainer: Literal["closed_form", "shap"],
    base_rate: float | dict[str, float] | None,
    cascade: tuple[str | None, int] | None,
) -> None:
    global _worker_scorer
    _worker_scorer = HallucinationScorer(
        model_path=model_path, explainer=explainer, base_rate=base_rate, cascade=_cascade(cascade)
    )


def _cascade(spec: tuple[str | None, int] | None) -> Cascade | None:
    """The second stage, loaded (torch and MiniLM) only when it is enabled."""
    if spec is None:
        return None
    from detectors.hallucination.cascade import Cascade

    return Cascade(spec[0], threads=spec[1])


def _warm() -> None:
    return None


def _score_in_worker(items: list[ScoreInput]) -> list[RiskResult]:
    assert _worker_scorer is not None, "worker not initialised"
    return _worker_scorer.score_batch(items)


def to_finding(result: RiskResult) -> Finding:
    """The `hallucination_risk` finding for one scored answer."""
    return Finding(
        name=FINDING_NAME,
        score=round(result.risk, 6),
        label="flagged" if result.flagged else "pass",
        explanation=result.explanation,
        features=result.features,
        evidence=tuple(Span(c.start, c.end, c.text) for c in result.claims),
        attributes={
            "slo_threshold": result.slo_threshold,
            "eval_threshold": result.eval_threshold,
            "slo_flagged": result.slo_flagged,
            "path": result.path,
            "task": result.task,
            "stage": result.stage,
            "unsupported_claims": len(result.claims),
            **({} if math.isnan(result.prior) else {"prior": round(result.prior, 4)}),
        },
    )


@dataclass(frozen=True)
class HallucinationOptions:
    """The detector's `options:` (see the class docstring; strings from `${VAR}` are converted)."""

    model_path: str | None = None
    embeddings: Literal["off", "cascade"] = "off"
    embedding_model_path: str | None = None
    batch_size: int = 32
    executor: Literal["thread", "process"] = "thread"
    explainer: Literal["closed_form", "shap"] = "closed_form"
    self_consistency: Mapping[str, Any] | None = None
    grounding_roles: tuple[str, ...] = GROUNDING_ROLES
    min_context_words: int = MIN_CONTEXT_WORDS
    base_rate: float | Mapping[str, float] | None = None
    cross_encoder: Literal["off", "cascade"] = "off"
    cross_encoder_path: str | None = None
    cross_encoder_threads: int = 1


class HallucinationDetector(BaseDetector):
    """Scores each exchange's answer against its grounding context.

    Options (YAML keys): `model_path` (artefact JSON; default the shipped
    model), `embeddings` (`off`; `cascade` is not shipped, see the docs for the
    measurement), `embedding_model_path`, `batch_size`, `executor`
    (`thread` | `process`), `explainer` (`closed_form`: SHAP values computed
    as coef * z, equal to `shap.LinearExplainer`'s; `shap`: the library itself),
    `grounding_roles` (the context parts an answer is checked against;
    default all of system, user, assistant, tool, document), `min_context_words`
    (content words of grounding below which an exchange takes the no-context
    path, default 8; see `grounding.py`), `base_rate` (the share of hallucinated
    answers expected in this traffic, one number or one per task shape; the risk
    is re-calibrated to it, see `scorer.py`; default: the training data's),
    `cross_encoder` (`off` | `cascade`: answers in the lexical model's uncertain
    band also go to the fine-tuned MiniLM cross-encoder, see `cascade.py`; needs
    the `embeddings` extra), `cross_encoder_path` (artefact; default the shipped
    one), `cross_encoder_threads` (torch threads in the worker, default 1),
    `self_consistency` (a mapping of `SelfConsistencyConfig` keys; off by
    default). `embedder` replaces the MiniLM model self-consistency loads.
    """

    finding_names = (FINDING_NAME, "hallucination_self_consistency")

    def __init__(
        self, *, embedder: Embedder | None = None, context: DetectorContext | None = None, **options: Any
    ) -> None:
        self.options = opts = build(HallucinationOptions, options, path=("options",))
        model_path, embeddings, embedding_model_path = opts.model_path, opts.embeddings, opts.embedding_model_path
        batch_size, executor, explainer = opts.batch_size, opts.executor, opts.explainer
        self_consistency, grounding_roles, min_context_words = (
            opts.self_consistency, opts.grounding_roles, opts.min_context_words
        )
        base_rate, cross_encoder = opts.base_rate, opts.cross_encoder
        cross_encoder_path, cross_encoder_threads = opts.cross_encoder_path, opts.cross_encoder_threads
        if embeddings != "off":
            raise ConfigError(
                f"embeddings: {embeddings!r} is not available in this build: MiniLM features measured no AUROC gain "
                "over the lexical ones (docs/hallucination.md); use 'off'."
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if executor not in ("thread", "process"):
            raise ConfigError(f"executor must be 'thread' or 'process', got {executor!r}")
        if cross_encoder not in ("off", "cascade"):
            raise ConfigError(f"cross_encoder must be 'off' or 'cascade', got {cross_encoder!r}")
        if cross_encoder_threads < 1:
            raise ConfigError(f"cross_encoder_threads must be >= 1, got {cross_encoder_threads}")
        if explainer not in ("closed_form", "shap"):
            raise ConfigError(f"explainer must be 'closed_form' or 'shap', got {explainer!r}")
        self.name = context.name if context is not None else "hallucination"
        unknown = sorted(set(grounding_roles) - set(GROUNDING_ROLES))
        if unknown or isinstance(grounding_roles, str):
            raise ConfigError(
                f"grounding_roles must be a list of {', '.join(GROUNDING_ROLES)}; got {grounding_roles!r}"
            )
        if min_context_words < 0:
            raise ConfigError(f"min_context_words must be >= 0, got {min_context_words}")
        self.grounding_roles = frozenset(grounding_roles)
        self.min_context_words = min_context_words
        self.consistency = _self_consistency(self.name, self_consistency, embedder, context)
        self.batch_size = batch_size
        self.embedding_model_path = embedding_model_path
        path = str(Path(model_path)) if model_path is not None else None
        # Load in this process first so a bad artefact fails at startup, not on the first exchange.
        spec = (cross_encoder_path, cross_encoder_threads) if cross_encoder == "cascade" else None
        self._scorer = HallucinationScorer(
            model_path=path, explainer=explainer, base_rate=base_rate, cascade=_cascade(spec)
        )
        self._executor: Executor
        if executor == "process":
            # spawn, not fork: the sidecar has threads (exporters, the loop) that a fork would copy mid-state.
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                1, mp_context=ctx, initializer=_init_worker, initargs=(path, explainer, self._scorer.base_rate, spec)
            )
            self._executor.submit(_warm)  # start the worker now, not on the first exchange
        else:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hallucination")
        self._process = executor == "process"
        self._pending: list[tuple[ScoreInput, asyncio.Future[RiskResult]]] = []
        self._emit = context.emit if context is not None else None
        self._checks: set[asyncio.Task[Finding | None]] = set()
        self._busy = False
        self.batches = 0

    @property
    def model(self) -> object:
        return self._scorer.model

    async def detect(self, exchange: Exchange) -> Sequence[Finding]:
        if not exchange.answer.strip() or _is_refusal(exchange.answer) or _is_abstention(exchange.answer):
            return []  # nothing asserted, nothing to check: refusals are the refusal detector's business
        ground = grounding(exchange, self.grounding_roles, self.min_context_words)
        item = ScoreInput(ground.text, exchange.question, exchange.answer, exchange.logprobs, ground.grounded)
        fut: asyncio.Future[RiskResult] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        self._maybe_dispatch()
        check = self.consistency.start(exchange, ground.grounded) if self.consistency is not None else None
        if check is not None and self._emit is not None:
            # In a sidecar the check finishes in the background and its finding goes to the sinks as a
            # supplement: the pipeline never waits seconds on an upstream for one exchange.
            self._checks.add(check)
            check.add_done_callback(lambda done: self._supplement(exchange, done))
            check = None
        try:
            findings = [to_finding(await fut)]
            if check is not None:
                extra = await check  # standalone use: bounded by self_consistency.timeout_s; never raises
                if extra is not None:
                    findings.append(extra)
        finally:
            if check is not None and not check.done():
                check.cancel()
        return findings

    def _supplement(self, exchange: Exchange, done: asyncio.Task[Finding | None]) -> None:
        self._checks.discard(done)
        if done.cancelled() or done.exception() is not None or self._emit is None:
            return
        finding = done.result()
        if finding is None:
            return
        stamped = dataclasses.replace(finding, detector=self.name, exchange_id=exchange.id)
        self._emit(Evaluation(exchange, (stamped,), {self.name: "scored"}, supplement=True))

    def _maybe_dispatch(self) -> None:
        if self._busy or not self._pending:
            return
        batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
        self._busy = True
        self.batches += 1
        items = [item for item, _ in batch]
        loop = asyncio.get_running_loop()
        if self._process:
            work = loop.run_in_executor(self._executor, _score_in_worker, items)
        else:
            work = loop.run_in_executor(self._executor, self._scorer.score_batch, items)
        work.add_done_callback(lambda done: self._resolve(batch, done))

    def _resolve(
        self, batch: list[tuple[ScoreInput, asyncio.Future[RiskResult]]], done: asyncio.Future[list[RiskResult]]
    ) -> None:
        self._busy = False
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        for k, (_, fut) in enumerate(batch):
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(done.result()[k])
        self._maybe_dispatch()

    async def aclose(self) -> None:
        for check in list(self._checks):
            check.cancel()
        for _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        await asyncio.to_thread(self._executor.shutdown, True)


def _self_consistency(
    name: str, options: Mapping[str, Any] | None, embedder: Embedder | None, context: DetectorContext | None
) -> SelfConsistency | None:
    """The checker the options ask for (None when disabled); bad options fail here, at startup.

    Imported here, not at the top: the bias package (MiniLM, metrics helpers) pulls in sklearn and pandas,
    which a sidecar without self-consistency (and the scoring worker process) should not carry.
    """
    from detectors.hallucination.consistency import CONSISTENCY_METRICS, SelfConsistency, SelfConsistencyConfig

    data = dict(options or {})
    where = Document(data=data, source=f"detector {name!r}", lines={})  # errors: "detector 'x': options.self_..."
    config = build(SelfConsistencyConfig, data, where, path=("options", "self_consistency"))
    if not config.enabled:
        return None
    from detectors.bias.gauges import metrics_for
    from detectors.common.embedding import load_embedder

    if config.api_key_env and not os.environ.get(config.api_key_env):
        logger.warning(
            "detector %s: self_consistency.api_key_env %s is not set; requests go without a key",
            name,
            config.api_key_env,
        )
    return SelfConsistency(
        config,
        embedder if embedder is not None else load_embedder(),
        clock=context.clock if context is not None else time.time,
        metrics=metrics_for(context, CONSISTENCY_METRICS),
    )


_ABSTENTION = re.compile(
    r"^\s*(?:(?:i'?m |i am )?sorry[,.!]?\s*(?:but\s+)?)?"
    r"(?:i (?:do not|don't|dont) know|(?:i'?m|i am) not sure|i (?:do not|don't) have (?:that|this|enough) information"
    r"|(?:the|this) (?:context|passages?|text|documents?|article) (?:does|do) not "
    r"(?:say|mention|contain|provide|specify)"
    r"|unable to answer|there is no (?:mention|information))\b[^.!?]*[.!?]?\s*$",
    re.IGNORECASE,
)


def _is_abstention(answer: str) -> bool:
    """A one-sentence answer that only abstains ("I don't know.", "The context does not say.")."""
    text = answer.replace("\u2019", "'").strip()
    return len(text) < 160 and not any(c.isdigit() for c in text) and _ABSTENTION.match(text) is not None


def _is_refusal(answer: str) -> bool:
    """An answer that only declines ("I'm sorry, but I can't help with that."), by the shared refusal classifier.

    Only a short answer with no figure in it counts: apologies that go on to assert something ("I'm sorry,
    but the seat costs $10") are scored.
    """
    text = answer.replace("\u2019", "'").strip()
    if len(text) >= 200 or any(c.isdigit() for c in text) or len(_SENTENCE_END.findall(text.rstrip(".!?"))) > 0:
        return False
    return _REFUSALS.classify(text).refused


_REFUSALS = RefusalClassifier()
_SENTENCE_END = re.compile(r"[.!?]\s+\S")
