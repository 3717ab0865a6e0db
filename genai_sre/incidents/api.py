"""The admin API for incidents, annotations and silences (aiohttp handlers).

```
GET    /admin/incidents[?status=open|acknowledged|resolved|active&limit=N]   read
GET    /admin/incidents/{id}                                                read
GET    /admin/incidents/{id}/postmortem        (text/markdown)              read
POST   /admin/incidents/{id}/ack               {"text"?}                    write
POST   /admin/incidents/{id}/resolve           {"text"?}                    write
POST   /admin/incidents/{id}/notes             {"text", "kind"?}            write
POST   /admin/annotations                      {"kind", "labels"?, "text"?, "at"?}   write
GET    /admin/annotations[?kind=K&since=S&until=U&limit=N]   newest last     read
GET    /admin/silences                                                      read
POST   /admin/silences                         {"matchers", "duration_s" | "ends_at", "comment"?}  write
DELETE /admin/silences/{id}                                                 write
POST   /admin/alertmanager                     Alertmanager webhook, version 4   write
```

Every request needs `Authorization: Bearer <token>`. The write token (from
the environment variable named by `admin.token_env`) may do everything; the
read token (`admin.read_token_env`) only GET. Tokens are compared in constant
time. A missing or unknown token gets 401, a read token on a write endpoint
403. With no token configured at all every request gets 401.

Handlers never touch the database on the event loop: store calls run on the
store's threads. A store that is locked or unreachable answers 503 with a JSON
error and `Retry-After` (Alertmanager retries a webhook answered 5xx).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiohttp import web

from genai_sre.errors import ConfigError, StorageError
from genai_sre.events import Annotation
from genai_sre.incidents.postmortem import EvidenceSource, render_postmortem
from genai_sre.incidents.service import IncidentService, incident_json

if TYPE_CHECKING:
    from genai_sre.alerting.silences import Silences
    from genai_sre.config import AdminConfig

__all__ = ["AdminAuth", "admin_routes", "annotation_json"]

logger = logging.getLogger(__name__)

Scope = Literal["read", "write"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024
RETRY_AFTER_S = "5"
T = TypeVar("T")


@dataclass(frozen=True)
class AdminAuth:
    write_token: str | None
    read_token: str | None = None

    @classmethod
    def from_env(cls, config: AdminConfig, environ: Mapping[str, str] | None = None) -> AdminAuth:
        env = os.environ if environ is None else environ
        return cls(env.get(config.token_env) or None, env.get(config.read_token_env) or None)

    def scope(self, authorization: str | None) -> Scope | None:
        """The scope a header grants, or None. Both tokens are always compared, in constant time."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        given = authorization[len("Bearer ") :].strip().encode()
        write = bool(self.write_token) and hmac.compare_digest(given, (self.write_token or "").encode())
        read = bool(self.read_token) and hmac.compare_digest(given, (self.read_token or "").encode())
        return "write" if write else ("read" if read else None)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _guard(auth: AdminAuth, needed: Scope, handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        scope = auth.scope(request.headers.get("Authorization"))
        if scope is None:
            return _error(401, "missing or invalid bearer token", **{"WWW-Authenticate": 'Bearer realm="genai-sre"'})
        if needed == "write" and scope != "write":
            return _error(403, "this token is read-only")
        try:
            return await handler(request)
        except KeyError as exc:
            return _error(404, str(exc.args[0]) if exc.args else "not found")
        except (ValueError, ConfigError) as exc:
            return _error(400, str(exc))
        except (StorageError, sqlite3.Error) as exc:
            logger.warning("admin API: incident store unavailable: %s", exc)
            return _error(503, f"incident store unavailable, retry later: {exc}", **{"Retry-After": RETRY_AFTER_S})

    return guarded


async def _json_body(request: web.Request, required: bool = True) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise ValueError("request body too large")
    raw = await request.read()
    if not raw:
        if required:
            raise ValueError("a JSON object body is required")
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


MAX_SILENCE_S = 366 * 86400


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, and no admin value may be unbounded (a silence `duration_s: Infinity`)."""
    raise ValueError(f"{name} is not a valid number here")


def _text(data: Mapping[str, Any], key: str = "text") -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


class _LoopEvidence:
    """The evidence source for a postmortem rendered on a store thread: SLO figures are read on the loop.

    Samples come from their own SQLite store (safe from any thread); the SLO engine is only ever
    touched by the event loop's thread, so its figures are fetched there.
    """

    def __init__(self, evidence: EvidenceSource, loop: asyncio.AbstractEventLoop) -> None:
        self._evidence = evidence
        self._loop = loop

    def samples(self, start: float, end: float, limit: int, *, slo: str | None = None) -> Any:
        return self._evidence.samples(start, end, limit, slo=slo)

    def slo_figures(self, slo: str, start: float, end: float) -> Any:
        figures = getattr(self._evidence, "slo_figures", None)
        if not callable(figures):
            return None

        async def on_loop() -> Any:
            return figures(slo, start, end)

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(timeout=10)


def _query_float(request: web.Request, key: str, default: float) -> float:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key!r} must be Unix seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{key!r} must be Unix seconds")
    return value


def annotation_json(a: Annotation) -> dict[str, Any]:
    return {"kind": a.kind, "at": a.at, "text": a.text, "labels": dict(a.labels)}


def admin_routes(
    service: IncidentService | None,
    silences: Silences | None,
    auth: AdminAuth,
    evidence: EvidenceSource | None = None,
) -> list[web.RouteDef]:
    """The admin API's routes; mount them on the admin server (`app.add_routes(...)`)."""
    routes: list[web.RouteDef] = []

    def add(method: str, path: str, scope: Scope, handler: Handler) -> None:
        routes.append(web.route(method, path, _guard(auth, scope, handler)))

    async def run(fn: Callable[..., T], *args: Any) -> T:
        """A blocking store call, off the event loop."""
        if service is not None:
            return await service.call(fn, *args)
        return await asyncio.to_thread(functools.partial(fn, *args))

    if service is not None:
        svc = service

        async def list_incidents(request: web.Request) -> web.StreamResponse:
            status = request.query.get("status") or None
            if status not in (None, "open", "acknowledged", "resolved", "active"):
                raise ValueError("status must be open, acknowledged, resolved or active")
            limit = int(request.query.get("limit", "100"))
            if not 0 < limit <= 10000:
                raise ValueError("limit must be between 1 and 10000")
            incidents = await run(svc.list_incidents, status, limit)
            return web.json_response({"incidents": [incident_json(i) for i in incidents]})

        async def show(request: web.Request) -> web.StreamResponse:
            return web.json_response(await run(svc.detail, request.match_info["id"]))

        async def postmortem(request: web.Request) -> web.StreamResponse:
            source = _LoopEvidence(evidence, asyncio.get_running_loop()) if evidence is not None else None
            text = await run(render_postmortem, svc, request.match_info["id"], source)
            return web.Response(text=text, content_type="text/markdown")

        async def ack(request: web.Request) -> web.StreamResponse:
            data = await _json_body(request, required=False)
            return web.json_response(incident_json(await run(svc.ack, request.match_info["id"], _text(data))))

        async def resolve(request: web.Request) -> web.StreamResponse:
            data = await _json_body(request, required=False)
            return web.json_response(incident_json(await run(svc.resolve, request.match_info["id"], _text(data))))

        async def note(request: web.Request) -> web.StreamResponse:
            data = await _json_body(request)
            event = await run(svc.note, request.match_info["id"], _text(data), _text(data, "kind") or "note")
            return web.json_response({"incident_id": event.incident_id, "at": event.at, "kind": event.kind}, status=201)

        async def annotate(request: web.Request) -> web.StreamResponse:
            data = await _json_body(request)
            kind = _text(data, "kind")
            if not kind:
                raise ValueError("'kind' is required (deploy, model_version, mitigation, ...)")
            labels = data.get("labels") or {}
            if not isinstance(labels, dict):
                raise ValueError("'labels' must be an object of strings")
            at = data.get("at")
            if at is not None and not isinstance(at, (int, float)):
                raise ValueError("'at' must be Unix seconds")
            annotation = Annotation(
                kind,
                float(at) if at is not None else svc.clock(),
                _text(data),
                {str(k): str(v) for k, v in labels.items()},
            )
            return web.json_response({"id": await run(svc.annotate, annotation)}, status=201)

        async def list_annotations(request: web.Request) -> web.StreamResponse:
            kind = request.query.get("kind") or None
            since = _query_float(request, "since", 0.0)
            until = _query_float(request, "until", float("inf"))
            limit = int(request.query.get("limit", "100"))
            if not 0 < limit <= 10000:
                raise ValueError("limit must be between 1 and 10000")
            found = await run(functools.partial(svc.store.annotations, kind, since, until))
            return web.json_response(
                {"annotations": [annotation_json(a) for a in found[-limit:]], "truncated": len(found) > limit}
            )

        async def alertmanager(request: web.Request) -> web.StreamResponse:
            if request.content_length and request.content_length > MAX_BODY:
                raise ValueError("request body too large")
            body = await request.read()
            # Answer only after the transaction committed: a 2xx promises the webhook is stored.
            result = await run(svc.ingest_webhook, body)
            return web.json_response({"incident_id": result.incident_id, "duplicate": result.duplicate})

        add("GET", "/admin/incidents", "read", list_incidents)
        add("GET", "/admin/incidents/{id}", "read", show)
        add("GET", "/admin/incidents/{id}/postmortem", "read", postmortem)
        add("POST", "/admin/incidents/{id}/ack", "write", ack)
        add("POST", "/admin/incidents/{id}/resolve", "write", resolve)
        add("POST", "/admin/incidents/{id}/notes", "write", note)
        add("POST", "/admin/annotations", "write", annotate)
        add("GET", "/admin/annotations", "read", list_annotations)
        add("POST", "/admin/alertmanager", "write", alertmanager)

    if silences is not None:
        sil = silences

        async def list_silences(request: web.Request) -> web.StreamResponse:
            return web.json_response({"silences": [s.to_json() for s in await run(sil.list)]})

        async def add_silence(request: web.Request) -> web.StreamResponse:
            data = await _json_body(request)
            matchers = data.get("matchers")
            if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
                raise ValueError("'matchers' must be a list of strings like 'slo=\"chat-latency\"'")
            now = sil.clock()
            if isinstance(data.get("ends_at"), (int, float)):
                ends_at = float(data["ends_at"])
            elif isinstance(data.get("duration_s"), (int, float)):
                ends_at = now + float(data["duration_s"])
            else:
                raise ValueError("give 'duration_s' or 'ends_at' (Unix seconds)")
            if not now < ends_at <= now + MAX_SILENCE_S:
                raise ValueError("a silence must end in the future and within 366 days")
            comment = _text(data, "comment")
            silence = await run(functools.partial(sil.add, matchers, ends_at=ends_at, comment=comment))
            return web.json_response(silence.to_json(), status=201)

        async def delete_silence(request: web.Request) -> web.StreamResponse:
            if not await run(sil.expire, request.match_info["id"]):
                raise KeyError(f"no silence {request.match_info['id']!r}")
            return web.json_response({"expired": request.match_info["id"]})

        add("GET", "/admin/silences", "read", list_silences)
        add("POST", "/admin/silences", "write", add_silence)
        add("DELETE", "/admin/silences/{id}", "write", delete_silence)
    return routes
