"""Capture → Exchange: parse provider dialects off the request path.

Dialects: OpenAI chat completions, Responses, completions, embeddings (also
served by vLLM, llama.cpp and Azure OpenAI) and Anthropic Messages; streaming
and not. The dialect follows the upstream's configured `provider`, or the route.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import zlib
from collections.abc import Mapping

from genai_sre.config import LabelsConfig, UpstreamConfig
from genai_sre.events import Capture, Exchange, Usage
from genai_sre.providers import anthropic, openai
from genai_sre.providers.classify import classify
from genai_sre.providers.sse import time_at
from genai_sre.providers.tokens import count_tokens
from genai_sre.providers.views import RequestView, ResponseView
from genai_sre.proxy.routes import BoundedLabel

__all__ = ["ExchangeParser"]

# Keys the pseudonyms of users and sessions: stable within the process, not reversible by hashing guesses.
_USER_SALT = secrets.token_bytes(16)


class ExchangeParser:
    """Turns a `Capture` into an `Exchange`, with bounded labels from configured headers and metadata."""

    def __init__(
        self,
        upstreams: tuple[UpstreamConfig, ...],
        labels: LabelsConfig,
        capture_limit: int = 1024 * 1024,
        *,
        estimate_tokens: bool = False,
    ) -> None:
        self.upstreams = {u.name: u for u in upstreams}
        self.labels = labels
        self.capture_limit = capture_limit
        # `telemetry.estimate_tokens`: count tokens offline when the upstream reports no usage (marked estimated)
        self.estimate_tokens = estimate_tokens
        self._tenant = BoundedLabel(labels.tenants, cap=labels.max_values)
        self._app = BoundedLabel(labels.apps, cap=labels.max_values)
        self._groups = {
            attr: BoundedLabel(labels.group_values.get(attr, ()), cap=min(16, labels.max_values))
            for attr in self._attributes()
        }

    def _attributes(self) -> set[str]:
        return set(self.labels.group_headers) | set(self.labels.group_metadata) | set(self.labels.group_values)

    def parse(self, capture: Capture) -> Exchange:
        kind = capture.classification or classify(capture.route, self.upstreams.get(capture.upstream))
        module = anthropic if kind.dialect == "anthropic" else openai
        req = RequestView()
        try:
            obj = json.loads(capture.request_body) if capture.request_body[:1] in (b"{", b" ", b"\n") else None
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            req = module.parse_request(capture.route, obj)
        stream = req.stream or capture.response_headers.get("content-type", "").startswith("text/event-stream")
        resp = ResponseView()
        if capture.response_body and capture.status:
            body = _decoded(
                capture.response_body, capture.response_headers.get("content-encoding", ""), self.capture_limit
            )
            resp = module.parse_response(capture.route, body, stream)
            if resp.error == "unparsable_response" and capture.response_truncated:
                resp.error = None  # cut at the capture limit: the answer is unknown, not broken
        usage = self._usage(req, resp)
        t0 = capture.t_received
        duration = (capture.t_last_byte - t0) if capture.t_last_byte is not None else None
        ttft = None
        if capture.ok and (resp.answer or resp.tool_calls):
            if stream and resp.first_content_offset is not None:
                t_tok = time_at(resp.first_content_offset, capture.chunks)
                ttft = (t_tok - t0) if t_tok is not None else None
            elif capture.t_first_byte is not None:
                ttft = capture.t_first_byte - t0
        tpot = None
        if duration is not None and ttft is not None and usage.output_tokens and usage.output_tokens > 1:
            tpot = max(0.0, (duration - ttft) / (usage.output_tokens - 1))
        upstream_duration = None
        if capture.t_upstream_sent is not None and capture.t_last_byte is not None:
            upstream_duration = capture.t_last_byte - capture.t_upstream_sent
        return Exchange(
            id=capture.id,
            started_at=capture.started_at,
            provider=kind.provider,
            operation=kind.operation,
            route=capture.route,
            upstream=capture.upstream,
            status=capture.status,
            stream=stream,
            model=req.model,
            response_model=resp.response_model,
            response_id=resp.response_id,
            messages=tuple(req.messages),
            context=tuple(req.context),
            question=req.question,
            answer=resp.answer,
            tool_calls=tuple(resp.tool_calls),
            finish_reason=resp.finish_reason,
            usage=usage,
            logprobs=tuple(resp.logprobs) if resp.logprobs else None,
            ttft_s=ttft,
            duration_s=duration,
            tpot_s=tpot,
            upstream_duration_s=upstream_duration,
            labels={**self._labels(capture.request_headers, req, capture.response_headers), **capture.labels},
            request_params=req.params,
            error=capture.error or resp.error,
            probe=capture.probe,
            server_address=kind.server_address,
            server_port=kind.server_port,
            trace=capture.trace,
            user=req.user[:256] if req.user else None,
            conversation_id=self._conversation(capture.request_headers, req),
            user_key=self._user_key(capture.request_headers, req),
        )

    def _conversation(self, headers: Mapping[str, str], req: RequestView) -> str | None:
        value = headers.get(self.labels.conversation_header.lower()) if self.labels.conversation_header else None
        value = value or req.conversation_id
        return value[:256] if value else None

    def _user_key(self, headers: Mapping[str, str], req: RequestView) -> str | None:
        """A pseudonym of the end user (OpenAI `user` / `safety_identifier`, Anthropic `metadata.user_id`),
        else of the session header's value; None when the request names neither."""
        header = self.labels.session_header
        value = req.user or (headers.get(header.lower()) if header else None)
        if not value:
            return None
        digest = hashlib.blake2b(value.encode("utf-8", "replace"), digest_size=8, key=_USER_SALT)
        return digest.hexdigest()

    def _usage(self, req: RequestView, resp: ResponseView) -> Usage:
        if resp.input_tokens is not None or resp.output_tokens is not None:
            inp = resp.input_tokens
            if inp is not None and resp.input_excludes_cache:  # Anthropic: the total includes cached input
                inp += (resp.cache_read_tokens or 0) + (resp.cache_write_tokens or 0)
            return Usage(
                inp,
                resp.output_tokens,
                estimated=False,
                cache_read_tokens=resp.cache_read_tokens,
                cache_write_tokens=resp.cache_write_tokens,
                reasoning_tokens=resp.reasoning_tokens,
            )
        if not self.estimate_tokens or (not resp.answer and not req.messages):
            return Usage()
        prompt = "\n".join(m.content for m in req.messages)
        answer = resp.answer + "".join(tc.arguments for tc in resp.tool_calls)
        return Usage(count_tokens(prompt), count_tokens(answer), estimated=True)

    def _labels(self, headers: Mapping[str, str], req: RequestView, response: Mapping[str, str]) -> dict[str, str]:
        cfg = self.labels
        out: dict[str, str] = {}
        tenant = headers.get(cfg.tenant_header.lower())
        if tenant:
            out["tenant"] = self._tenant.observe(tenant)
        app = headers.get(cfg.app_header.lower())
        if app:
            out["app"] = self._app.observe(app)
        version = headers.get(cfg.model_version_header.lower()) or response.get(cfg.model_version_header.lower())
        if version:
            out["model_version"] = version[:64]
        for attr, header in cfg.group_headers.items():
            value = headers.get(header.lower())
            if value:
                out[f"group.{attr}"] = self._groups[attr].observe(value.strip().lower())
        for attr in cfg.group_metadata:
            value = req.metadata.get(attr)
            if value:
                out[f"group.{attr}"] = self._groups[attr].observe(value.strip().lower())
        return out


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """The captured body, decompressed when the upstream compressed it, never to more than `limit` bytes.

    A cut-off body gives what it can; output past the limit is dropped (the body counts as truncated),
    so a small compressed body that expands to gigabytes costs at most `limit` bytes of memory.
    """
    enc = encoding.strip().lower()
    try:
        if enc in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit)
        if enc == "deflate":
            return zlib.decompressobj().decompress(body, limit)
        if enc == "br":
            return _brotli(body, limit)
    except Exception:  # noqa: BLE001  # undecodable: parse what was captured
        return body
    return body


def _brotli(body: bytes, limit: int) -> bytes:
    try:
        import brotli  # optional: present when aiohttp's speedups are installed
    except ImportError:
        return body
    decompressor = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(body), 256):  # small pieces: one piece can only expand so far
        if len(out) >= limit:
            break
        try:
            piece = decompressor.process(body[start : start + 256], output_buffer_limit=limit - len(out))
        except TypeError:  # an older brotli without output limits
            piece = decompressor.process(body[start : start + 256])
        out += piece[: limit - len(out)]
    return bytes(out)
