"""The records that cross stage boundaries.

```
proxy ──Capture──▶ pipeline ──Exchange──▶ detectors ──Finding──▶ slo ──Alert──▶ alerting ──▶ incidents
```

Every record is a frozen dataclass. Stages import from here, never from each
other. Times named `t_*` are `time.monotonic()` seconds; times named `*_at` are
Unix epoch seconds (wall clock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "Alert",
    "Annotation",
    "Capture",
    "Classification",
    "ContextPart",
    "DetectorOutcome",
    "Evaluation",
    "Exchange",
    "Finding",
    "Incident",
    "Message",
    "Span",
    "TRANSPORT_ERRORS",
    "TimelineEvent",
    "ToolCall",
    "TraceIds",
    "Usage",
    "succeeded",
    "status_text",
]

TransportError = Literal["timeout", "connect", "cut", "bad_response", "client_disconnect", "too_large", "bad_request"]
TRANSPORT_ERRORS: frozenset[str] = frozenset(get_args(TransportError))


def status_text(status: int | None, error: str | None) -> str:
    """An exchange's outcome as people read it: `status=503`, or `status=error (cut)` for a transport failure."""
    if error in TRANSPORT_ERRORS or not status:
        return f"status=error ({error or 'no response'})"
    return f"status={status}"


@dataclass(frozen=True, slots=True)
class TraceIds:
    """W3C trace context of one proxied request (lower-case hex ids).

    `parent_span_id` is the client's span (from its `traceparent`), or None when
    the client sent none; `server_span_id` is the sidecar's span for the request
    and `upstream_span_id` its child span for the upstream call, whose id the
    proxy put in the `traceparent` it forwarded upstream.
    """

    trace_id: str
    server_span_id: str
    upstream_span_id: str
    parent_span_id: str | None = None
    sampled: bool = True
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """What a request is, decided once by the proxy (`genai_sre.providers.classify`)."""

    provider: str  # gen_ai.provider.name
    operation: str  # gen_ai.operation.name
    dialect: Literal["openai", "anthropic"]
    server_address: str | None = None
    server_port: int | None = None


def succeeded(status: int, error: str | None) -> bool:
    """The one `ok` predicate: the upstream answered (no 5xx) and the answer reached the client whole."""
    return error is None and 0 < status < 500


@dataclass(frozen=True, slots=True)
class Capture:
    """What the proxy saw of one request, copied off the hot path as it happened.

    Bodies are bounded by the configured capture limit (`*_truncated` says when
    the cap was hit). Request headers never include credentials (see
    `genai_sre.proxy.headers`). `chunks` holds `(end_offset, t)` pairs: the
    response byte offset at which each received chunk ended and the monotonic
    time it arrived, so parsers can time the first *content* token of a stream.
    """

    id: str
    method: str
    path: str
    route: str
    upstream: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int
    response_headers: Mapping[str, str]
    response_body: bytes
    started_at: float
    t_received: float
    t_upstream_sent: float | None = None
    t_headers: float | None = None
    t_first_byte: float | None = None
    t_last_byte: float | None = None
    chunks: tuple[tuple[int, float], ...] = ()
    request_truncated: bool = False
    response_truncated: bool = False
    error: TransportError | None = None
    probe: bool = False
    trace: TraceIds | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # bounded labels the proxy chose: model, tenant, app
    classification: Classification | None = None

    @property
    def ok(self) -> bool:
        """The upstream answered and the answer reached the client whole."""
        return succeeded(self.status, self.error)


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ContextPart:
    """A piece of grounding the application supplied with the request."""

    kind: Literal["system", "user", "tool", "document", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one exchange, as the upstream reported them (or estimated, when `estimated`).

    `input_tokens` counts every input token, cached ones included (the OpenAI
    convention; Anthropic's separate cache fields are added in); the cache and
    reasoning counts are parts of the input and output totals, None when the
    upstream did not report them.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    estimated: bool = False
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """The parsed view of one request and its response.

    `context` holds the grounding the app supplied (system prompt, earlier user
    turns, tool results, retrieved documents); `question` is the last user turn;
    `answer` the text the model returned. Latencies are in seconds and `None`
    when they cannot be known (no response, no content). `user_key` is a
    pseudonym (a keyed hash, stable within the process) of the end user or
    session that sent the request, None when it named none; statistics use it
    to count one user's repeated requests as one unit, nothing stores it.
    """

    id: str
    started_at: float
    provider: str
    operation: str
    route: str
    upstream: str
    status: int
    stream: bool
    model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    messages: tuple[Message, ...] = ()
    context: tuple[ContextPart, ...] = ()
    question: str = ""
    answer: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    logprobs: tuple[float, ...] | None = None
    ttft_s: float | None = None
    duration_s: float | None = None
    tpot_s: float | None = None
    upstream_duration_s: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    request_params: Mapping[str, float | int | str | bool] = field(default_factory=dict)
    error: str | None = None
    probe: bool = False
    server_address: str | None = None
    server_port: int | None = None
    trace: TraceIds | None = None
    user: str | None = None  # the end user the client named (OpenAI `user`, Anthropic `metadata.user_id`)
    conversation_id: str | None = None  # the client's conversation or session id, when it sent one
    user_key: str | None = None  # a keyed pseudonym of the user or session (fairness units of evidence)

    @property
    def ok(self) -> bool:
        return succeeded(self.status, self.error)

    @property
    def context_text(self) -> str:
        return "\n\n".join(part.text for part in self.context if part.text)


@dataclass(frozen=True, slots=True)
class Span:
    """A character range of the answer that a finding points at."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Finding:
    """What one detector instance concluded about one exchange.

    `name` is the evaluation name (stable, snake_case: `hallucination_risk`,
    `ttft`, `refusal`); `score` a risk in [0, 1] or a measured value; `label` a
    bounded verdict (`pass`, `fail`, `flagged`, `slow`, ...). `features` carries
    the top contributions to a model-based score (SHAP values), `evidence` the
    spans of the answer it points at. `detector` and `exchange_id` are stamped by
    the runner; a detector leaves them empty.
    """

    name: str
    score: float | None = None
    label: str | None = None
    explanation: str = ""
    features: tuple[tuple[str, float], ...] = ()
    evidence: tuple[Span, ...] = ()
    attributes: Mapping[str, float | int | str | bool] = field(default_factory=dict)
    detector: str = ""
    exchange_id: str = ""


DetectorOutcome = Literal["scored", "failed", "timeout", "sampled_out", "over_budget"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An exchange with every finding about it, and what each detector did.

    A detector whose outcome is not `scored` produced no findings; quality SLIs
    leave such exchanges out rather than count them as good.

    A `supplement` carries findings about an exchange that was already
    evaluated, produced later by a background check (the hallucination
    detector's self-consistency re-asks): sinks count its findings but not the
    exchange again (no second latency observation, request count or span).
    """

    exchange: Exchange
    findings: tuple[Finding, ...] = ()
    outcomes: Mapping[str, DetectorOutcome] = field(default_factory=dict)
    supplement: bool = False

    def scored_by(self, detector: str) -> bool:
        return self.outcomes.get(detector) == "scored"

    def finding(self, detector: str, name: str | None = None) -> Finding | None:
        for f in self.findings:
            if f.detector == detector and (name is None or f.name == name):
                return f
        return None


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id for a label set (the role of Alertmanager's fingerprint)."""
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Alert:
    """A firing or resolved alert, labelled at least with `alertname`, `slo` and `severity`."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    starts_at: float = 0.0
    ends_at: float | None = None
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class Annotation:
    """A marker on the timeline: a deploy, a model version change, a mitigation."""

    kind: str
    at: float
    text: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    incident_id: str
    at: float
    kind: str
    text: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str
    group_key: str
    severity: str
    status: Literal["open", "acknowledged", "resolved"]
    opened_at: float
    labels: Mapping[str, str] = field(default_factory=dict)
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    detected_burn_start_at: float | None = None
