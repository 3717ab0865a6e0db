"""The agent's side of fail-over: SLO pages that move an upstream's traffic, and the record of every action.

Proxy workers own the breakers (`genai_sre.proxy.failover`); the agent owns
what only it can see, the SLOs. `FailoverController`:

- **fails over on an SLO page.** An SLO whose `filters.upstreams` names one
  upstream alone, and that upstream's `fallback` with `on_slo_page: true`:
  while the SLO's page tier fires, the agent holds that upstream failed over
  (`wanted()`, pushed to every worker). The page is read from the engine's
  state on each evaluation, so a page already firing when the agent starts
  counts too.
- **spreads a breaker.** When one worker's breaker opens, every worker is
  told to fail over (`breaker`), until that worker's probes close it: with N
  workers an outage costs about `trip_after_failures` failed requests, not N
  times as many.
- **fails back after an SLO fail-over** once (1) the page has resolved (with
  user traffic on the fallback, the upstream's short window empties) and (2)
  the last `recover_after_successes` probes that the SLO's filters match were
  all judged good by that SLO's own SLI (availability, latency or quality:
  the mirrored probes are scored like any traffic, and `on_probe` hears each
  verdict although no user SLI counts them).
- **records every fail-over and fail-back**, the workers' breaker changes
  included (one annotation per upstream, not one per worker), as a
  `mitigation` annotation (`record`), keeps the latest ones for the demo and
  `/healthz`, and reports its state (`on_change`, the `failover.json` that
  `genai-sre slo status` reads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from genai_sre.config import FallbackConfig, UpstreamConfig
from genai_sre.events import Alert, Annotation
from genai_sre.proxy.failover import FailoverEvent
from genai_sre.slo.engine import SLOStatus
from genai_sre.slo.spec import SLOFile

__all__ = ["FailoverController", "Mitigation", "scoped_slos"]

logger = logging.getLogger(__name__)

SOURCE = "genai-sre"


def scoped_slos(slos: SLOFile | None, upstreams: Iterable[UpstreamConfig]) -> dict[str, str]:
    """SLO name -> upstream, for the SLOs whose page fails that upstream over."""
    if slos is None:
        return {}
    eligible = {u.name for u in upstreams if u.fallback is not None and u.fallback.on_slo_page}
    return {
        s.name: s.filters.upstreams[0]
        for s in slos.slos
        if len(s.filters.upstreams) == 1 and s.filters.upstreams[0] in eligible and s.alerting.page.enabled
    }


@dataclass(frozen=True, slots=True)
class Mitigation:
    """One recorded fail-over or fail-back."""

    at: float
    upstream: str
    fallback: str
    action: Literal["failover", "failback"]
    reason: str
    text: str

    def annotation(self) -> Annotation:
        labels = {
            "upstream": self.upstream, "fallback": self.fallback, "action": self.action, "reason": self.reason,
            "source": SOURCE,
        }  # fmt: skip
        return Annotation("mitigation", self.at, self.text, labels)


@dataclass
class _Hold:
    """An SLO page holding an upstream failed over."""

    since: float
    burn: str
    resolved: bool = False
    streak: int = 0  # consecutive good probe verdicts of this SLO


@dataclass
class _Upstream:
    name: str
    fallback: str
    config: FallbackConfig
    breakers: dict[str, tuple[float, float]] = field(default_factory=dict)  # worker -> (opened, heard at)
    holds: dict[str, _Hold] = field(default_factory=dict)  # SLO name -> hold

    @property
    def active(self) -> bool:
        return bool(self.breakers or self.holds)


class FailoverController:
    def __init__(
        self,
        upstreams: Sequence[UpstreamConfig],
        scoped: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        push: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.clock = clock
        self.push = push
        self.scoped = dict(scoped or {})
        self.record: Callable[[Annotation], None] | None = None  # stores an annotation (set by the wiring)
        self.on_change: Callable[[dict[str, Any]], None] | None = None  # the new state (set by the wiring)
        self.recent: deque[Mitigation] = deque(maxlen=50)
        self._ups = {
            u.name: _Upstream(u.name, u.fallback.upstream, u.fallback) for u in upstreams if u.fallback is not None
        }
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._ups)

    # -- what the workers are told ---------------------------------------------------------------

    def wanted(self) -> dict[str, str]:
        """Upstream -> reason for every upstream held failed over: `slo:<name>` (a page) or `breaker` (a worker's)."""
        with self._lock:
            return {
                u.name: f"slo:{min(u.holds)}" if u.holds else "breaker" for u in self._ups.values() if u.active
            }

    def greeting(self) -> list[tuple[Any, ...]]:
        """Control messages for a worker that (re)connects."""
        return [("failover", self.wanted())]

    # -- from the workers ------------------------------------------------------------------------

    def on_worker_event(self, worker: str, event: FailoverEvent) -> None:
        with self._lock:
            up = self._ups.get(event.upstream)
            if up is None:
                return
            if event.action == "failover":
                first = not up.breakers
                if worker in up.breakers:
                    return  # a replay of what this agent already knows
                up.breakers[worker] = (event.at, self.clock())
                if not first:
                    logger.info("breaker of %s also open in worker %s", up.name, worker)
                    return
                note = " (reported again after the agent reconnected)" if event.replay else ""
                text = f"failover {up.name} -> {up.fallback}: reason=breaker; {event.detail}{note}"
                done = self._note(up, "failover", "breaker", text, event.at)
            else:
                if up.breakers.pop(worker, None) is None or up.breakers:
                    return
                done = self._note(up, "failback", "breaker", self._failback_text(up, "breaker", event.detail), event.at)
        self._after(done, push=True)

    def forget_workers(self, live: set[str], grace_s: float = 10.0) -> None:
        """Breakers of workers that stopped or went silent no longer hold an upstream failed over."""
        done: list[Mitigation] = []
        now = self.clock()
        with self._lock:
            for up in self._ups.values():
                gone = [w for w, (_, heard) in up.breakers.items() if w not in live and now - heard > grace_s]
                if not gone:
                    continue
                for w in gone:
                    del up.breakers[w]
                if not up.breakers:
                    text = self._failback_text(up, "breaker", f"worker(s) {', '.join(gone)} stopped")
                    done += self._note(up, "failback", "breaker", text, now)
        self._after(done, push=bool(done))

    # -- SLOs ------------------------------------------------------------------------------------

    def evaluate(self, statuses: Iterable[SLOStatus], alerts: Iterable[Alert] = ()) -> None:
        """Apply the SLO engine's state: pages of scoped SLOs fail over; resolved, well-probed ones fail back."""
        if not self.scoped:
            return
        burn_of = {
            a.labels.get("slo", ""): a.annotations.get("burn_rate", "")
            for a in alerts
            if a.status == "firing" and a.labels.get("sloth_severity") == "page"
        }
        now = self.clock()
        done: list[Mitigation] = []
        changed = False
        with self._lock:
            for st in statuses:
                name = self.scoped.get(st.name)
                up = self._ups.get(name) if name is not None else None
                if up is None:
                    continue
                paging = "page" in st.firing
                hold = up.holds.get(st.name)
                if paging and hold is None:
                    burn = burn_of.get(st.name) or _shortest_burn(st)
                    up.holds[st.name] = _Hold(now, burn)
                    text = (
                        f"failover {up.name} -> {up.fallback}: reason=slo:{st.name}; the SLO {st.name} paged "
                        f"(burn rate {burn}x)"
                    )
                    done += self._note(up, "failover", f"slo:{st.name}", text, now)
                    changed = True
                elif hold is not None:
                    hold.resolved = not paging
                    released = self._release_if_healthy(up, st.name, hold, now)
                    done += released
                    changed = changed or bool(released)
        self._after(done, push=changed)

    def on_probe(self, slo: str, good: bool) -> None:
        """A probe's verdict by the SLI of `slo` (the recorder calls this for every probe an SLO matches)."""
        name = self.scoped.get(slo)
        if name is None:
            return
        done: list[Mitigation] = []
        with self._lock:
            up = self._ups.get(name)
            hold = up.holds.get(slo) if up is not None else None
            if up is None or hold is None:
                return
            hold.streak = hold.streak + 1 if good else 0
            done = self._release_if_healthy(up, slo, hold, self.clock())
        if done:
            self._after(done, push=True)

    def _release_if_healthy(self, up: _Upstream, slo: str, hold: _Hold, now: float) -> list[Mitigation]:
        need = up.config.recover_after_successes
        if not hold.resolved or hold.streak < need:
            return []
        del up.holds[slo]
        detail = (
            f"the page of SLO {slo} resolved and the last {need} probes were good by its SLI "
            f"({now - hold.since:.0f} s after the fail-over)"
        )
        return self._note(up, "failback", f"slo:{slo}", self._failback_text(up, f"slo:{slo}", detail), now)

    # -- state -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Per upstream with a fallback: whether it is failed over, why, and since when."""
        with self._lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for up in self._ups.values():
            reasons = (["breaker"] if up.breakers else []) + [f"slo:{s}" for s in sorted(up.holds)]
            since = min([*(t for t, _ in up.breakers.values()), *(h.since for h in up.holds.values())], default=None)
            out[up.name] = {
                "fallback": up.fallback,
                "active": up.active,
                "reasons": reasons,
                "since": since,
                "workers_failed_over": len(up.breakers),
            }
        return out

    # -- internals -------------------------------------------------------------------------------

    def _failback_text(self, up: _Upstream, reason: str, detail: str) -> str:
        still = (["breaker"] if up.breakers else []) + [f"slo:{s}" for s in sorted(up.holds)]
        if still:
            return f"failback {up.name} ({reason} cleared; still failed over for {', '.join(still)}): {detail}"
        return f"failback {up.name}: reason={reason} cleared; {detail}; traffic returns to {up.name}"

    def _note(self, up: _Upstream, action: Literal["failover", "failback"], reason: str, text: str,
              at: float) -> list[Mitigation]:
        m = Mitigation(at, up.name, up.fallback, action, reason, text)
        self.recent.append(m)
        return [m]

    def _after(self, done: list[Mitigation], push: bool) -> None:
        """Outside the lock: tell the workers, store the annotations, report the state."""
        if push and self.push is not None:
            try:
                self.push(self.wanted())
            except Exception:  # isolation boundary: a worker that cannot be told hears it on reconnect
                logger.exception("fail-over state could not be sent to the proxy workers")
        for m in done:
            logger.warning("%s", m.text, extra={"upstream": m.upstream, "action": m.action, "reason": m.reason})
            if self.record is not None:
                self.record(m.annotation())
        if done and self.on_change is not None:
            self.on_change(self.status())


def _shortest_burn(st: SLOStatus) -> str:
    for w in st.windows:
        if w.burn_rate is not None:
            return f"{w.burn_rate:.2f}"
    return "?"
