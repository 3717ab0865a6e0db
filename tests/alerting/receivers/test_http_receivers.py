"""PagerDuty, Slack and webhook receivers against real loopback HTTP servers, through Delivery."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from genai_sre.alerting.config import DeliveryConfig
from genai_sre.alerting.delivery import Delivery
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.receivers.http import HTTPSender
from genai_sre.alerting.receivers.pagerduty import PagerDutyReceiver
from genai_sre.alerting.receivers.slack import SlackReceiver
from genai_sre.alerting.receivers.webhook import WebhookReceiver
from genai_sre.telemetry.metrics import Metrics
from tests.alerting.helpers import alert, http_server

GROUP_KEY = '{}:{alertname="SLOBurnRate", slo="chat-availability"}'
ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def notification(status: str = "firing") -> Notification:
    a = alert(
        status=status,
        starts_at=1_800_000_000.0,
        ends_at=1_800_000_600.0 if status == "resolved" else None,
        annotations={"runbook_url": "https://runbooks.example/slo", "evidence": "hallucination_risk 0.91 on 40%"},
    )
    return Notification(
        "pd",
        GROUP_KEY,
        status,
        {"alertname": "SLOBurnRate", "slo": "chat-availability"},
        (a,),  # type: ignore[arg-type]
        1_800_000_100.0,
    )


async def no_sleep(_: float) -> None:
    return None


def delivery(metrics: Metrics | None = None, attempts: int = 4) -> tuple[Delivery, list[float]]:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    return Delivery(DeliveryConfig(max_attempts=attempts, timeout_s=5), metrics=metrics, sleep=sleep), waits


def test_pagerduty_trigger_and_resolve_payloads() -> None:
    async def main() -> None:
        async with http_server(lambda n: 202, '{"status":"success"}') as (url, cap):
            http = HTTPSender()
            rec = PagerDutyReceiver("PD_KEY", url=url, http=http, environ={"PD_KEY": ROUTING_KEY})
            d, _ = delivery()
            assert (await d.deliver("pd", rec, notification())).outcome == "sent"
            assert (await d.deliver("pd", rec, notification("resolved"))).outcome == "sent"
            await http.aclose()
        trigger, resolve = cap.bodies
        dedup = hashlib.sha256(GROUP_KEY.encode()).hexdigest()
        assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == dedup
        payload = trigger["payload"]
        assert set(payload) >= {"summary", "source", "severity"}
        assert payload["severity"] == "critical"  # severity=page
        assert payload["summary"] == "chat-availability burning (page)"
        assert payload["timestamp"] == "2027-01-15T08:00:00.000Z"
        assert payload["custom_details"]["burn_rate"] == "14.4"
        assert {"href": "https://runbooks.example/slo", "text": "Runbook"} in trigger["links"]
        assert resolve == {"routing_key": ROUTING_KEY, "dedup_key": dedup, "event_action": "resolve"}

    asyncio.run(main())


@pytest.mark.parametrize(("status", "attempts"), [(429, 3), (500, 3), (503, 3), (400, 1), (404, 1)])
def test_retry_only_on_429_and_5xx(status: int, attempts: int) -> None:
    async def main() -> None:
        async with http_server(lambda n: status if n < 2 else 200) as (url, cap):
            http = HTTPSender()
            rec = SlackReceiver("SLACK_URL", http=http, environ={"SLACK_URL": url})
            metrics = Metrics()
            d, waits = delivery(metrics)
            record = await d.deliver("slack", rec, notification())
            await http.aclose()
        assert record.attempts == attempts == len(cap.bodies)
        if attempts == 1:
            assert record.outcome == "failed" and str(status) in record.error
            assert url not in record.error  # the secret URL never shows
        else:
            assert record.outcome == "sent"
            assert waits == [0.5, 1.0]  # exponential backoff
        sent = metrics.registry.get_sample_value(
            "genai_sre_alert_notifications_total", {"receiver": "slack", "outcome": record.outcome}
        )
        assert sent == 1.0

    asyncio.run(main())


def test_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        async with http_server(lambda n: 502) as (url, cap):
            http = HTTPSender()
            rec = WebhookReceiver("HOOK", http=http, environ={"HOOK": url})
            d, waits = delivery(attempts=3)
            record = await d.deliver("hook", rec, notification())
            await http.aclose()
        assert record.outcome == "failed" and record.attempts == 3 and len(waits) == 2
        assert d.log[-1] == record

    asyncio.run(main())


def test_slack_block_kit_message() -> None:
    async def main() -> None:
        async with http_server() as (url, cap):
            http = HTTPSender()
            await SlackReceiver("S", http=http, environ={"S": url}).send(notification())
            await http.aclose()
        (msg,) = cap.bodies
        assert msg["text"].startswith("[PAGE] chat-availability burning")
        blocks = msg["blocks"]
        assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
        fields = " ".join(f["text"] for f in blocks[1]["fields"])
        assert "`chat-availability`" in fields and "14.4x" in fields and "80.0%" in fields
        assert any("hallucination_risk" in b.get("text", {}).get("text", "") for b in blocks)
        assert "<https://runbooks.example/slo|Runbook>" in blocks[-1]["elements"][0]["text"]

    asyncio.run(main())


def test_webhook_v4_payload_and_bearer() -> None:
    async def main() -> None:
        async with http_server() as (url, cap):
            http = HTTPSender()
            rec = WebhookReceiver("HOOK", bearer_token_env="TOK", http=http, environ={"HOOK": url, "TOK": "s3cret"})
            await rec.send(notification())
            await http.aclose()
        (body,) = cap.bodies
        assert cap.headers[0]["Authorization"] == "Bearer s3cret"
        assert body["version"] == "4" and body["groupKey"] == GROUP_KEY and body["status"] == "firing"
        assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert set(body) == {
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        }
        again = Notification.from_webhook(body, 0.0)
        assert again.alerts[0].fingerprint == notification().alerts[0].fingerprint

    asyncio.run(main())


def test_missing_secret_env_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="PD_KEY"):
        PagerDutyReceiver("PD_KEY", environ={})
