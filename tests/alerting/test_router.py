from __future__ import annotations

import asyncio

from genai_sre.alerting.config import AlertingConfig, InhibitRuleConfig, ReceiverConfig, RouteConfig
from genai_sre.alerting.router import AlertRouter
from tests.alerting.helpers import FakeClock, RecordingReceiver, alert


def make_router(clock: FakeClock, **route: object) -> tuple[AlertRouter, RecordingReceiver]:
    cfg = AlertingConfig(
        route=RouteConfig(
            **{  # type: ignore[arg-type]
                "receiver": "rec",
                "group_by": ("alertname", "slo"),
                "group_wait_s": 10,
                "group_interval_s": 60,
                "repeat_interval_s": 3600,
                **route,
            }
        ),
        inhibit_rules=(InhibitRuleConfig(('severity="page"',), ('severity="ticket"',), ("slo",)),),
        receivers=(ReceiverConfig("rec", "stdout"),),
    )
    rec = RecordingReceiver()
    return AlertRouter(cfg, {"rec": rec}, clock=clock), rec


async def step(router: AlertRouter) -> None:
    await router.flush()
    await router.drain()


def test_group_wait_grouping_and_dedup() -> None:
    async def main() -> None:
        clock = FakeClock()
        router, rec = make_router(clock, group_by=("slo",))
        await router.submit(alert(severity="page"))
        await router.submit(alert(severity="page"))  # same fingerprint: deduplicated
        await router.submit(alert(severity="ticket", labels={"alertname": "Other"}, slo="chat-availability"))
        await step(router)
        assert rec.got == []  # group_wait not over
        clock.advance(10)
        await step(router)
        assert len(rec.got) == 1
        (n,) = rec.got
        assert n.status == "firing" and len(n.alerts) == 1  # the ticket is inhibited by the page
        assert n.group_key == '{}:{slo="chat-availability"}'
        clock.advance(60)
        await step(router)
        assert len(rec.got) == 1  # unchanged: no repeat before repeat_interval
        clock.advance(3600)
        await step(router)
        assert len(rec.got) == 2  # repeat

    asyncio.run(main())


def test_resolve_notification_and_ticket_after_page_resolves() -> None:
    async def main() -> None:
        clock = FakeClock()
        router, rec = make_router(clock)
        page = alert(severity="page", labels={"alertname": "Page"})
        ticket = alert(severity="ticket", labels={"alertname": "Ticket"})
        await router.submit(page)
        await router.submit(ticket)
        clock.advance(10)
        await step(router)
        assert [n.common_labels["severity"] for n in rec.got] == ["page"]  # ticket group: all inhibited
        await router.submit(alert(severity="page", labels={"alertname": "Page"}, status="resolved"))
        clock.advance(60)
        await step(router)
        kinds = sorted((n.common_labels["severity"], n.status) for n in rec.got[1:])
        assert kinds == [("page", "resolved"), ("ticket", "firing")]
        resolved = next(n for n in rec.got if n.status == "resolved")
        assert resolved.alerts[0].ends_at == clock.now - 60

    asyncio.run(main())


def test_silence_mutes_until_expiry() -> None:
    async def main() -> None:
        clock = FakeClock()
        router, rec = make_router(clock)
        router.silences.add(['slo="chat-availability"'], ends_at=clock.now + 100, comment="maintenance")
        await router.submit(alert())
        clock.advance(10)
        await step(router)
        assert rec.got == []
        clock.advance(100)
        await step(router)
        assert len(rec.got) == 1
        assert router.silences.list() == []

    asyncio.run(main())


def test_child_routes_continue_and_keys() -> None:
    async def main() -> None:
        clock = FakeClock()
        cfg = AlertingConfig(
            route=RouteConfig(
                receiver="a",
                group_wait_s=0,
                routes=(
                    RouteConfig(receiver="b", matchers=('severity="page"',), continue_=True),
                    RouteConfig(receiver="c", matchers=('slo=~"chat-.*"',)),
                    RouteConfig(receiver="a", matchers=('severity="ticket"',)),
                ),
            ),
            receivers=(ReceiverConfig("a", "stdout"), ReceiverConfig("b", "stdout"), ReceiverConfig("c", "stdout")),
        )
        recs = {k: RecordingReceiver() for k in "abc"}
        router = AlertRouter(cfg, recs, clock=clock)
        await router.submit(alert(severity="page"))
        await router.submit(alert(severity="ticket", slo="other"))
        await router.submit(alert(severity="info", slo="x"))
        await step(router)
        assert [n.group_key for n in recs["b"].got] == [
            '{}/{severity="page"}:{alertname="SLOBurnRate", slo="chat-availability"}'
        ]
        assert len(recs["c"].got) == 1
        assert sorted(n.common_labels["slo"] for n in recs["a"].got) == ["other", "x"]

    asyncio.run(main())


def test_send_resolved_false_skips_resolve() -> None:
    async def main() -> None:
        clock = FakeClock()
        cfg = AlertingConfig(
            route=RouteConfig(receiver="rec", group_wait_s=0, group_interval_s=1),
            receivers=(ReceiverConfig("rec", "stdout", send_resolved=False),),
        )
        rec = RecordingReceiver()
        router = AlertRouter(cfg, {"rec": rec}, clock=clock)
        await router.submit(alert())
        await step(router)
        await router.submit(alert(status="resolved"))
        clock.advance(1)
        await step(router)
        assert [n.status for n in rec.got] == ["firing"]

    asyncio.run(main())
