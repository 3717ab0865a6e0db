"""Spans for one evaluated exchange, following the OpenTelemetry GenAI semantic conventions.

Each proxied request becomes two finished spans, built after the fact from the
captured timings and carrying the ids the proxy already used on the wire:

- the **server** span (kind SERVER, id `trace.server_span_id`), child of the
  client's span when the client sent a `traceparent`, from the request's
  arrival to its last byte;
- the **upstream** span (kind CLIENT, id `trace.upstream_span_id`), its child,
  the call to the LLM API; the proxy forwarded `traceparent` with this id, so
  the upstream's own spans hang below it. It ends at the last byte and starts
  `upstream_duration_s` earlier.

Both are named `{gen_ai.operation.name} {gen_ai.request.model}`. The server
span carries every GenAI attribute; the upstream span only those that identify
the call (operation, provider, models, response id, server address and port,
error), because encoding attributes is most of the export's CPU cost.

Every finding becomes a `gen_ai.evaluation.result` event on the server span.
Content (`gen_ai.input.messages`, `gen_ai.output.messages`, and the free-text
`gen_ai.evaluation.explanation`, which may quote the answer) is added only
when `capture_content` is on, and then redacted. Request headers are never
read here, so credentials cannot leak.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes.user_attributes import USER_ID
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import AttributeValue

from genai_sre import __version__
from genai_sre.events import Evaluation, Exchange, Finding, TraceIds
from genai_sre.telemetry.attribution import attribution_of

__all__ = ["SCOPE", "SpanBuilder", "exchange_attributes", "finding_attributes", "span_name"]

SCOPE = InstrumentationScope("genai_sre", __version__)
EVALUATION_EVENT = "gen_ai.evaluation.result"
TENANT = "genai_sre.tenant"
APP = "genai_sre.app"
MAX_EXPLANATION = 1024

# request parameters the parser keeps -> GenAI attribute
_PARAMS = {
    "temperature": ga.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": ga.GEN_AI_REQUEST_TOP_P,
    "top_k": ga.GEN_AI_REQUEST_TOP_K,
    "max_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "frequency_penalty": ga.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": ga.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": ga.GEN_AI_REQUEST_SEED,
    "n": ga.GEN_AI_REQUEST_CHOICE_COUNT,
}


# the status the proxy answers with when the upstream gave none (ARCHITECTURE, failure behaviour)
_LOCAL_STATUS = {"connect": 502, "timeout": 504}


# the upstream span repeats only what identifies the call; the server span carries the full set
_UPSTREAM_ATTRIBUTES = frozenset(
    {
        ga.GEN_AI_OPERATION_NAME,
        ga.GEN_AI_PROVIDER_NAME,
        ga.GEN_AI_REQUEST_MODEL,
        ga.GEN_AI_RESPONSE_MODEL,
        ga.GEN_AI_RESPONSE_ID,
        SERVER_ADDRESS,
        SERVER_PORT,
        ERROR_TYPE,
        HTTP_RESPONSE_STATUS_CODE,
    }
)


def span_name(ex: Exchange) -> str:
    return f"{ex.operation} {ex.model}" if ex.model else ex.operation


def error_type(ex: Exchange) -> str | None:
    """`error.type`: the transport error or parsed API error, else the HTTP status code of a failed response."""
    if ex.error:
        return ex.error
    if ex.status >= 400:
        return str(ex.status)
    if ex.status == 0:
        return "_OTHER"
    return None


def exchange_attributes(
    ex: Exchange, user_id: Callable[[str | None], str | None] | None = None
) -> dict[str, AttributeValue]:
    """The GenAI and HTTP attributes of one exchange (no content, no headers).

    `user_id` maps the end user the client named to `user.id` (a keyed hash, see
    `genai_sre.telemetry.attribution.UserId`); without it, or when it returns
    None, the attribute is left out.
    """
    tenant, app = attribution_of(ex)
    attrs: dict[str, AttributeValue] = {
        ga.GEN_AI_OPERATION_NAME: ex.operation,
        ga.GEN_AI_PROVIDER_NAME: ex.provider,
        HTTP_ROUTE: ex.route,
        "genai_sre.exchange.id": ex.id,
        "genai_sre.upstream": ex.upstream,
        TENANT: tenant,
        APP: app,
    }
    optional: dict[str, AttributeValue | None] = {
        ga.GEN_AI_REQUEST_MODEL: ex.model,
        ga.GEN_AI_RESPONSE_MODEL: ex.response_model,
        ga.GEN_AI_RESPONSE_ID: ex.response_id,
        ga.GEN_AI_CONVERSATION_ID: ex.conversation_id,
        ga.GEN_AI_USAGE_INPUT_TOKENS: ex.usage.input_tokens,
        ga.GEN_AI_USAGE_OUTPUT_TOKENS: ex.usage.output_tokens,
        ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: ex.usage.cache_read_tokens,
        ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: ex.usage.cache_write_tokens,
        ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: ex.usage.reasoning_tokens,
        USER_ID: user_id(ex.user) if user_id is not None else None,
        SERVER_ADDRESS: ex.server_address,
        SERVER_PORT: ex.server_port,
        ERROR_TYPE: error_type(ex),
        HTTP_RESPONSE_STATUS_CODE: ex.status or None,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    for key, value in ex.request_params.items():
        name = _PARAMS.get(key)
        if name is None or (key == "n" and value == 1):
            continue
        attrs.setdefault(name, value)
    if ex.finish_reason:
        attrs[ga.GEN_AI_RESPONSE_FINISH_REASONS] = (ex.finish_reason,)
    if ex.stream:
        attrs[ga.GEN_AI_REQUEST_STREAM] = True
        if ex.ttft_s is not None:
            attrs[ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ex.ttft_s
    if ex.usage.estimated:
        attrs["genai_sre.usage.estimated"] = True
    if ex.probe:
        attrs["genai_sre.probe"] = True
    return attrs


def finding_attributes(
    f: Finding, response_id: str | None, redact: Callable[[str], str] | None
) -> dict[str, AttributeValue]:
    """The `gen_ai.evaluation.result` attributes of one finding.

    The free-text explanation may quote the answer (the hallucination detector
    names unsupported words), so it is content: exported, redacted and bounded,
    only when `redact` is given (content capture on). The top contributing
    features (names and SHAP values) are always exported.
    """
    attrs: dict[str, AttributeValue] = {ga.GEN_AI_EVALUATION_NAME: f.name}
    if f.score is not None:
        attrs[ga.GEN_AI_EVALUATION_SCORE_VALUE] = float(f.score)
    if f.label:
        attrs[ga.GEN_AI_EVALUATION_SCORE_LABEL] = f.label
    if f.explanation and redact is not None:
        attrs[ga.GEN_AI_EVALUATION_EXPLANATION] = redact(f.explanation)[:MAX_EXPLANATION]
    if response_id:
        attrs[ga.GEN_AI_RESPONSE_ID] = response_id
    if f.detector:
        attrs["genai_sre.detector"] = f.detector
    if f.features:
        attrs["genai_sre.evaluation.features"] = tuple(f"{name}={value:.4g}" for name, value in f.features)
    return attrs


def content_attributes(ex: Exchange, redact: Callable[[str], str]) -> dict[str, AttributeValue]:
    """Opt-in: `gen_ai.input.messages` / `gen_ai.output.messages` as redacted JSON parts."""
    inputs = [
        {"role": m.role, "parts": [{"type": "text", "content": redact(m.content)}]} for m in ex.messages
    ]
    parts: list[dict[str, Any]] = []
    if ex.answer:
        parts.append({"type": "text", "content": redact(ex.answer)})
    for tc in ex.tool_calls:
        parts.append({"type": "tool_call", "id": tc.id, "name": tc.name, "arguments": redact(tc.arguments)})
    output: dict[str, Any] = {"role": "assistant", "parts": parts}
    if ex.finish_reason:
        output["finish_reason"] = ex.finish_reason
    attrs: dict[str, AttributeValue] = {}
    if inputs:
        attrs[ga.GEN_AI_INPUT_MESSAGES] = json.dumps(inputs, ensure_ascii=False)
    if parts:
        attrs[ga.GEN_AI_OUTPUT_MESSAGES] = json.dumps([output], ensure_ascii=False)
    return attrs


@dataclass(frozen=True)
class SpanBuilder:
    resource: Resource
    sampler: Sampler
    capture_content: bool
    redact: Callable[[str], str]
    user_id: Callable[[str | None], str | None] | None = None

    def sampled(self, ex: Exchange) -> bool:
        """The configured sampler's decision, with the client's span (and its sampled flag) as parent."""
        ids = _ids(ex)
        result = self.sampler.should_sample(
            _parent_context(ids), int(ids.trace_id, 16), span_name(ex), SpanKind.SERVER
        )
        return result.decision == Decision.RECORD_AND_SAMPLE

    def build(self, evaluation: Evaluation, now_ns: int) -> tuple[ReadableSpan, ReadableSpan]:
        """The (server, upstream) spans of one evaluated exchange."""
        ex = evaluation.exchange
        ids = _ids(ex)
        trace_id = int(ids.trace_id, 16)
        state = _trace_state(ids.tracestate)
        flags = TraceFlags(TraceFlags.SAMPLED)
        server_ctx = SpanContext(trace_id, int(ids.server_span_id, 16), False, flags, state)
        upstream_ctx = SpanContext(trace_id, int(ids.upstream_span_id, 16), False, flags, state)
        parent = (
            SpanContext(trace_id, int(ids.parent_span_id, 16), True, flags, state) if ids.parent_span_id else None
        )
        start = int(ex.started_at * 1e9)
        duration = ex.duration_s if ex.duration_s is not None else (ex.upstream_duration_s or 0.0)
        end = start + int(max(0.0, duration) * 1e9)
        up_start = end - int(max(0.0, min(duration, ex.upstream_duration_s or duration)) * 1e9)
        attrs = exchange_attributes(ex, self.user_id)
        if self.capture_content:
            attrs.update(content_attributes(ex, self.redact))
        err = error_type(ex)
        status = Status(StatusCode.ERROR, err) if err else Status(StatusCode.UNSET)
        content = self.redact if self.capture_content else None
        events = [
            Event(EVALUATION_EVENT, finding_attributes(f, ex.response_id, content), now_ns)
            for f in evaluation.findings
        ]
        server = ReadableSpan(
            span_name(ex),
            context=server_ctx,
            parent=parent,
            resource=self.resource,
            attributes=attrs,
            events=events,
            kind=SpanKind.SERVER,
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=SCOPE,
        )
        upstream_attrs = {k: v for k, v in attrs.items() if k in _UPSTREAM_ATTRIBUTES}
        local = _LOCAL_STATUS.get(ex.error or "") if not ex.status else None
        if local is not None:  # no upstream response: the status is the one the sidecar answered with
            attrs[HTTP_RESPONSE_STATUS_CODE] = local
        upstream = ReadableSpan(
            span_name(ex),
            context=upstream_ctx,
            parent=server_ctx,
            resource=self.resource,
            attributes=upstream_attrs,
            kind=SpanKind.CLIENT,
            status=status,
            start_time=up_start,
            end_time=end,
            instrumentation_scope=SCOPE,
        )
        return server, upstream


def _ids(ex: Exchange) -> TraceIds:
    """The proxy's ids, or (for an exchange captured without them) ids derived from the exchange id."""
    if ex.trace is not None:
        return ex.trace
    raw = hashlib.sha256(ex.id.encode()).hexdigest()
    return TraceIds(trace_id=raw[:32], server_span_id=raw[32:48], upstream_span_id=raw[48:64])


def _parent_context(ids: TraceIds) -> Any:
    if not ids.parent_span_id:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if ids.sampled else TraceFlags.DEFAULT)
    parent = SpanContext(
        int(ids.trace_id, 16), int(ids.parent_span_id, 16), True, flags, _trace_state(ids.tracestate)
    )
    return trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent))


def _trace_state(header: str | None) -> TraceState | None:
    if not header:
        return None
    try:
        return TraceState.from_header([header])
    except ValueError:
        return None
