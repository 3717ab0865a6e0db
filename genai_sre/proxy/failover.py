"""Fail-over in a proxy worker: a breaker per upstream that has a `fallback`, and where its requests go.

The forwarding path asks one question before it sends a request: is this
upstream failed over? That is a lookup in `Failover.redirect` (a plain dict,
empty while every upstream is healthy). Everything else runs in the
bookkeeping after a response:

- **Breaker.** `trip_after_failures` consecutive failures of an upstream
  (5xx, connection error, timeout, cut response) open its breaker: new
  requests go to the fallback upstream, with the fallback `model` when one is
  set. A client that went away counts neither way; 4xx are the client's.
- **Held by the agent.** The agent sends the upstreams it holds failed over
  (`apply()`): those an SLO page holds (`slo:<name>`), and those whose
  breaker opened in another worker (`breaker`), so that every worker fails
  over after the first one's `trip_after_failures` failures, not after its
  own. They are routed exactly as with an open breaker.
- **Half-open probes.** While failed over, one request per `probe_interval_s`
  is *mirrored* to the primary as a probe: the client gets the fallback's
  answer, the copy's answer is discarded after it has been counted and
  scored (marked as a probe, so no user SLI counts it). Only a worker whose
  own breaker is open, or that an SLO page holds, probes. After
  `recover_after_successes` consecutive probes without a failure the breaker
  closes; a fail-over held by the agent ends when the agent says so (the
  breakers closed, or the page resolved and probes scored good, see
  `genai_sre.healing`).

Each worker keeps its own breakers (it sees its failures first-hand); every
opening and closing is reported to the agent as a `FailoverEvent`, which
records it as a `mitigation` annotation.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from genai_sre.config import FallbackConfig, UpstreamConfig
from genai_sre.proxy.stats import ProxyStats

__all__ = ["Failover", "FailoverEvent", "Redirect", "replace_model"]

logger = logging.getLogger(__name__)

ACTIVE = "genai_sre_failover_active"
TOTAL = "genai_sre_failover"
PROBES = "genai_sre_failover_probes"
RETRIES = "genai_sre_failover_retries"
BREAKER = "breaker"

_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True, slots=True)
class FailoverEvent:
    """A worker's breaker opened (`failover`) or closed (`failback`) for `upstream`."""

    upstream: str
    fallback: str
    action: Literal["failover", "failback"]
    reason: str  # "breaker"
    at: float  # Unix seconds
    detail: str = ""
    replay: bool = False  # sent again after the channel reconnected: the state, not a new change


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where a failed-over upstream's requests go."""

    upstream: UpstreamConfig  # the fallback
    model: bytes | None  # JSON-escaped model name to send instead of the client's, or None


def replace_model(body: bytes, model: bytes) -> bytes:
    """The JSON body with its top-level-looking `"model": "..."` value replaced (first 16 KiB searched)."""
    m = _MODEL.search(body, 0, 16384)
    if m is None:
        return body
    return body[: m.start(1)] + model + body[m.end(1) :]


class _State:
    __slots__ = (
        "name", "config", "redirect", "failures", "last_failure", "breaker_since", "held",
        "probe_at", "probing", "successes",
    )  # fmt: skip

    def __init__(self, name: str, config: FallbackConfig, redirect: Redirect) -> None:
        self.name = name
        self.config = config
        self.redirect = redirect
        self.failures = 0
        self.last_failure = ""
        self.breaker_since: float | None = None  # Unix seconds the breaker opened
        self.held: str | None = None  # "slo:<name>" or "breaker" while the agent holds it failed over
        self.probe_at = float("-inf")  # monotonic time of the last probe sent
        self.probing = False
        self.successes = 0

    @property
    def active(self) -> bool:
        return self.breaker_since is not None or self.held is not None


class Failover:
    """Breakers and redirects of one worker's upstreams (only those with a `fallback`)."""

    def __init__(
        self,
        upstreams: Iterable[UpstreamConfig],
        stats: ProxyStats,
        notify: Callable[[FailoverEvent], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        ups = tuple(upstreams)
        by_name = {u.name: u for u in ups}
        self.stats = stats
        self.notify = notify
        self.clock = clock
        self.wall = wall
        self.redirect: dict[str, Redirect] = {}  # the forwarding path reads only this
        self.watched: dict[str, _State] = {}
        for u in ups:
            if u.fallback is None:
                continue
            model = json.dumps(u.fallback.model)[1:-1].encode() if u.fallback.model else None
            self.watched[u.name] = _State(u.name, u.fallback, Redirect(by_name[u.fallback.upstream], model))
            stats.gauges.setdefault(ACTIVE, {})[(u.name,)] = 0.0

    # -- the forwarding path ---------------------------------------------------------------------

    def probe_due(self, name: str) -> bool:
        """Whether this request (for a failed-over upstream) should also be mirrored to it as a probe."""
        st = self.watched[name]
        now = self.clock()
        if st.probing or now - st.probe_at < st.config.probe_interval_s:
            return False
        if st.breaker_since is None and st.held == BREAKER:
            return False  # another worker's breaker: that worker probes
        st.probing = True
        st.probe_at = now
        return True

    def retry_enabled(self, name: str) -> Redirect | None:
        st = self.watched.get(name)
        return st.redirect if st is not None and st.config.retry_before_first_byte else None

    # -- bookkeeping after a response ------------------------------------------------------------

    def on_result(self, name: str, ok: bool, detail: str = "") -> None:
        """A request to `name` finished: a success resets its failure run, a failure extends it."""
        st = self.watched.get(name)
        if st is None:
            return
        if ok:
            st.failures = 0
            return
        st.failures += 1
        st.last_failure = detail
        if st.breaker_since is None and st.failures >= st.config.trip_after_failures:
            st.breaker_since = self.wall()
            st.successes = 0
            st.probe_at = self.clock()  # the first probe comes one interval after the trip
            self._changed(st, BREAKER)
            self._emit(
                st, "failover", f"breaker opened after {st.failures} consecutive failures (last: {detail or 'error'})"
            )

    def on_probe_result(self, name: str, ok: bool, detail: str = "") -> None:
        """A mirrored probe to failed-over `name` finished."""
        st = self.watched.get(name)
        if st is None:
            return
        st.probing = False
        self.stats.inc(PROBES, (name, "ok" if ok else "error"))
        if st.breaker_since is None:
            return
        if not ok:
            st.successes = 0
            st.last_failure = detail
            return
        st.successes += 1
        if st.successes >= st.config.recover_after_successes:
            opened = st.breaker_since
            st.breaker_since = None
            st.failures = 0
            st.successes = 0
            self._changed(st, None)
            self._emit(
                st,
                "failback",
                f"breaker closed after {st.config.recover_after_successes} consecutive successful probes "
                f"({self.wall() - opened:.0f} s after it opened)"
                + (f"; still failed over for {st.held}" if st.held and st.held != BREAKER else ""),
            )

    def on_retry(self, name: str, reason: str) -> None:
        self.stats.inc(RETRIES, (name, reason))

    # -- from the agent --------------------------------------------------------------------------

    def apply(self, wanted: Mapping[str, str]) -> None:
        """The agent's fail-overs: upstream -> reason (`slo:<name>` or `breaker`); upstreams not named are not held."""
        for name, st in self.watched.items():
            reason = wanted.get(name)
            if reason is not None and reason.startswith("slo:") and not st.config.on_slo_page:
                reason = None
            if reason == st.held:
                continue
            st.held = reason
            # a breaker is counted where it opened; an SLO hold in every worker it moves
            self._changed(st, reason if reason is not None and reason != BREAKER else None)

    def replay(self) -> list[FailoverEvent]:
        """The breakers open now, as events (for an agent that just (re)connected)."""
        return [
            FailoverEvent(
                st.name, st.redirect.upstream.name, "failover", BREAKER, st.breaker_since,
                f"breaker open ({st.failures} consecutive failures, last: {st.last_failure or 'error'})", True,
            )
            for st in self.watched.values()
            if st.breaker_since is not None
        ]  # fmt: skip

    def state(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "fallback": st.redirect.upstream.name,
                "active": st.active,
                "breaker_open_since": st.breaker_since,
                "held": st.held,
                "consecutive_failures": st.failures,
            }
            for name, st in self.watched.items()
        }

    # -- internals -------------------------------------------------------------------------------

    def _changed(self, st: _State, added: str | None) -> None:
        """Recompute the redirect and gauge of `st`; `added`: the reason that just started, if any."""
        if added is not None:
            self.stats.inc(TOTAL, (st.name, added))
        if st.active:
            self.redirect[st.name] = st.redirect
        else:
            self.redirect.pop(st.name, None)
            st.probing = False
        self.stats.gauges.setdefault(ACTIVE, {})[(st.name,)] = 1.0 if st.active else 0.0

    def _emit(self, st: _State, action: Literal["failover", "failback"], detail: str) -> None:
        event = FailoverEvent(st.name, st.redirect.upstream.name, action, BREAKER, self.wall(), detail)
        logger.warning(
            "%s %s -> %s: %s", action, st.name, st.redirect.upstream.name, detail, extra={"upstream": st.name}
        )
        if self.notify is not None:
            try:
                self.notify(event)
            except Exception:  # isolation boundary: reporting must not break forwarding
                logger.exception("fail-over event could not be reported")
