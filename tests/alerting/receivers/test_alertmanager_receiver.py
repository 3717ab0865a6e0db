from __future__ import annotations

import asyncio

from genai_sre.alerting.notification import Notification, parse_time
from genai_sre.alerting.receivers.alertmanager import AlertmanagerReceiver
from genai_sre.alerting.receivers.http import HTTPSender
from tests.alerting.helpers import FakeClock, alert, http_server


def test_resend_firing_and_retain_resolved() -> None:
    async def main() -> None:
        clock = FakeClock(1_800_000_000.0)
        async with http_server(path="/api/v2/alerts") as (url, cap):
            http = HTTPSender()
            rec = AlertmanagerReceiver(url.removesuffix("/api/v2/alerts"), resend_interval_s=60,
                                       resolved_retention_s=300, http=http, clock=clock)
            firing = alert(starts_at=clock.now - 5)
            await rec.send(Notification("am", "k", "firing", {}, (firing,), clock.now))
            clock.advance(60)
            await rec.resend()
            resolved = alert(status="resolved", starts_at=clock.now - 65, ends_at=clock.now)
            await rec.send(Notification("am", "k", "resolved", {}, (resolved,), clock.now))
            clock.advance(200)
            await rec.resend()  # still within retention
            clock.advance(200)
            await rec.resend()  # past retention: nothing left, nothing sent
            await http.aclose()
        assert len(cap.bodies) == 4
        first, again, res, res_again = (b[0] for b in cap.bodies)
        assert parse_time(first["endsAt"]) == 1_800_000_000.0 + 240  # 4 resend intervals ahead
        assert parse_time(again["endsAt"]) == 1_800_000_060.0 + 240
        assert first["startsAt"] == again["startsAt"]
        assert parse_time(res["endsAt"]) == 1_800_000_060.0 == parse_time(res_again["endsAt"])
        assert set(first) == {"labels", "annotations", "startsAt", "endsAt"}

    asyncio.run(main())
