"""The worker's breaker state machine and the agent's controller, on their own (injected clocks)."""

from __future__ import annotations

from dataclasses import replace

from genai_sre.config import FallbackConfig, UpstreamConfig
from genai_sre.events import Alert, Annotation
from genai_sre.healing.controller import FailoverController, scoped_slos
from genai_sre.proxy.failover import Failover, FailoverEvent, replace_model
from genai_sre.proxy.stats import ProxyStats, Snapshot, merge
from genai_sre.slo.engine import SLOStatus, WindowStatus
from genai_sre.slo.spec import Filters, SLISpec, SLOFile, SLOSpec


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _ups(**fallback: object) -> tuple[UpstreamConfig, ...]:
    fb = FallbackConfig(upstream="backup", **fallback)  # type: ignore[arg-type]
    return (UpstreamConfig("primary", "http://primary", fallback=fb), UpstreamConfig("backup", "http://backup"))


def test_breaker_opens_on_consecutive_failures_only_and_closes_on_good_probes() -> None:
    clock, events = Clock(), list[FailoverEvent]()
    stats = ProxyStats()
    fo = Failover(_ups(trip_after_failures=3, probe_interval_s=5, recover_after_successes=2), stats, events.append,
                  clock=clock, wall=clock)
    for ok in (False, False, True, False, False):  # a success breaks the run
        fo.on_result("primary", ok, "HTTP 503")
    assert fo.redirect == {} and stats.gauges["genai_sre_failover_active"][("primary",)] == 0.0
    fo.on_result("primary", False, "timeout")
    assert fo.redirect["primary"].upstream.name == "backup"
    assert [e.action for e in events] == ["failover"] and "last: timeout" in events[0].detail
    assert stats.counters["genai_sre_failover"] == {("primary", "breaker"): 1}
    fo.on_result("backup", False, "HTTP 500")  # upstreams without a fallback have no breaker

    # half-open: one probe per interval, never two at once
    assert not fo.probe_due("primary")  # the first one comes an interval after the trip
    clock.now += 5
    assert fo.probe_due("primary") and not fo.probe_due("primary")
    fo.on_probe_result("primary", True)
    clock.now += 5
    assert fo.probe_due("primary")
    fo.on_probe_result("primary", False, "HTTP 503")  # a failure restarts the count
    for _ in range(2):
        clock.now += 5
        assert fo.probe_due("primary")
        fo.on_probe_result("primary", True)
    assert fo.redirect == {} and [e.action for e in events] == ["failover", "failback"]
    assert stats.counters["genai_sre_failover_probes"] == {("primary", "ok"): 3, ("primary", "error"): 1}
    assert fo.replay() == []


def test_slo_hold_from_the_agent_and_replay_of_open_breakers() -> None:
    clock, events = Clock(), list[FailoverEvent]()
    stats = ProxyStats()
    fo = Failover(_ups(trip_after_failures=1), stats, events.append, clock=clock, wall=clock)
    fo.apply({"primary": "slo:grounded"})
    assert "primary" in fo.redirect and stats.counters["genai_sre_failover"] == {("primary", "slo:grounded"): 1}
    assert events == []  # the agent decided it: it records it
    fo.apply({})
    assert fo.redirect == {}
    fo.on_result("primary", False, "connect")
    (replayed,) = fo.replay()
    assert replayed.replay and replayed.reason == "breaker" and replayed.at == clock.now

    off = Failover(_ups(on_slo_page=False), ProxyStats(), clock=clock, wall=clock)
    off.apply({"primary": "slo:grounded"})
    assert off.redirect == {}


def test_gauges_of_several_workers_merge_as_any_failed_over() -> None:
    a = Snapshot(gauges={"genai_sre_failover_active": {("p",): 1.0}, "genai_sre_in_flight_requests": {("p",): 2}})
    b = Snapshot(gauges={"genai_sre_failover_active": {("p",): 1.0}, "genai_sre_in_flight_requests": {("p",): 3}})
    c = Snapshot(gauges={"genai_sre_failover_active": {("p",): 0.0}})
    merged = merge([a, b, c])
    assert merged.gauges["genai_sre_failover_active"][("p",)] == 1.0
    assert merged.gauges["genai_sre_in_flight_requests"][("p",)] == 5


def test_replace_model_keeps_the_rest_of_the_body() -> None:
    body = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "model: x"}]}'
    assert replace_model(body, b"fallback-model") == body.replace(b"gpt-4o", b"fallback-model")
    assert replace_model(b'{"input": "x"}', b"m") == b'{"input": "x"}'


# -- the agent's controller ------------------------------------------------------------------------

SLOS = SLOFile(
    slos=(
        SLOSpec("primary-grounded", 97, SLISpec("quality", detector="h", finding="f", threshold=0.5),
                filters=Filters(upstreams=("primary",))),
        SLOSpec("all-availability", 99.5, SLISpec("availability")),
        SLOSpec("two-upstreams", 99, SLISpec("availability"), filters=Filters(upstreams=("primary", "backup"))),
    )
)


def _status(name: str, paging: bool) -> SLOStatus:
    window = WindowStatus("5m", 10, 100, 0.1, 3.33)
    return SLOStatus(name, 97, "30d", 0.03, (window,), 0.5, ("page",) if paging else (), 90, 10)


def _controller(clock: Clock, **fallback: object) -> tuple[FailoverController, list[Annotation], list[dict[str, str]]]:
    ups = _ups(recover_after_successes=3, **fallback)
    recorded: list[Annotation] = []
    pushed: list[dict[str, str]] = []
    ctl = FailoverController(ups, scoped_slos(SLOS, ups), clock=clock, push=pushed.append)
    ctl.record = recorded.append
    return ctl, recorded, pushed


def test_only_slos_scoped_to_one_upstream_with_a_fallback_fail_it_over() -> None:
    ups = _ups()
    assert scoped_slos(SLOS, ups) == {"primary-grounded": "primary"}
    assert scoped_slos(SLOS, _ups(on_slo_page=False)) == {}
    no_page = replace(SLOS.slos[0], alerting=replace(SLOS.slos[0].alerting, page=replace(
        SLOS.slos[0].alerting.page, enabled=False)))
    assert scoped_slos(SLOFile(slos=(no_page,)), ups) == {}


def test_a_page_fails_over_and_fails_back_after_resolution_and_good_probes() -> None:
    clock = Clock()
    ctl, recorded, pushed = _controller(clock)
    page = Alert(labels={"slo": "primary-grounded", "sloth_severity": "page"}, annotations={"burn_rate": "18.20"},
                 status="firing", starts_at=clock.now)
    ctl.evaluate([_status("primary-grounded", True), _status("all-availability", True)], [page])
    assert pushed == [{"primary": "slo:primary-grounded"}] and ctl.wanted() == {"primary": "slo:primary-grounded"}
    (fo,) = recorded
    assert fo.kind == "mitigation" and fo.labels["action"] == "failover"
    assert fo.labels["reason"] == "slo:primary-grounded"
    assert "SLO primary-grounded paged (burn rate 18.20x)" in fo.text and "failover primary -> backup" in fo.text

    # good probes while the page still fires: held
    for _ in range(5):
        ctl.on_probe("primary-grounded", True)
    ctl.evaluate([_status("primary-grounded", True)])
    assert ctl.wanted() and len(recorded) == 1
    # resolved, but a bad probe breaks the run: held until three good ones in a row
    ctl.on_probe("primary-grounded", False)
    clock.now += 60
    ctl.evaluate([_status("primary-grounded", False)])
    ctl.on_probe("primary-grounded", True)
    ctl.on_probe("primary-grounded", True)
    assert ctl.wanted() and len(recorded) == 1
    ctl.on_probe("primary-grounded", True)
    assert ctl.wanted() == {} and pushed[-1] == {}
    back = recorded[-1]
    assert back.labels["action"] == "failback" and "last 3 probes were good" in back.text and "60 s" in back.text
    assert ctl.status()["primary"]["active"] is False


def test_worker_breakers_make_one_record_per_upstream_and_dead_workers_are_forgotten() -> None:
    clock = Clock()
    ctl, recorded, _ = _controller(clock)
    ev = FailoverEvent("primary", "backup", "failover", "breaker", clock.now, "breaker opened after 5")
    ctl.on_worker_event("w1", ev)
    ctl.on_worker_event("w2", ev)
    ctl.on_worker_event("w1", replace(ev, replay=True))
    assert len(recorded) == 1 and ctl.status()["primary"]["workers_failed_over"] == 2
    ctl.on_worker_event("w1", replace(ev, action="failback", detail="closed"))
    assert len(recorded) == 1  # w2 still failed over
    clock.now += 5
    ctl.forget_workers({"w1"})  # within the grace period: kept
    assert ctl.status()["primary"]["active"]
    clock.now += 10
    ctl.forget_workers({"w1"})
    assert not ctl.status()["primary"]["active"]
    assert recorded[-1].labels["action"] == "failback" and "w2 stopped" in recorded[-1].text
    ctl.on_worker_event("w9", replace(ev, action="failback"))  # a fail-back it never heard open: ignored
    assert len(recorded) == 2


def test_one_workers_breaker_moves_every_worker_and_only_it_probes() -> None:
    clock = Clock()
    ctl, recorded, pushed = _controller(clock, trip_after_failures=2, probe_interval_s=1)
    workers = {w: Failover(_ups(trip_after_failures=2, probe_interval_s=1), ProxyStats(), clock=clock, wall=clock)
               for w in ("w1", "w2")}
    for w, fo in workers.items():
        fo.notify = lambda event, w=w: ctl.on_worker_event(w, event)  # type: ignore[misc]
    ctl.push = lambda wanted: [fo.apply(wanted) for fo in workers.values()]  # type: ignore[assignment, func-returns-value]
    w1, w2 = workers["w1"], workers["w2"]
    w1.on_result("primary", False)
    w1.on_result("primary", False)
    assert "primary" in w1.redirect and "primary" in w2.redirect  # w2 never saw a failure
    assert w2.stats.counters.get("genai_sre_failover", {}) == {}  # the trip is counted where it happened
    assert w1.stats.counters["genai_sre_failover"] == {("primary", "breaker"): 1}
    clock.now += 1
    assert not w2.probe_due("primary") and w1.probe_due("primary")
    for _ in range(3):
        w1.on_probe_result("primary", True)
        clock.now += 1
        w1.probe_due("primary")
    assert w1.redirect == {} and w2.redirect == {}
    assert [m.labels["action"] for m in recorded] == ["failover", "failback"]
