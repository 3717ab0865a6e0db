"""Fault scenario: a burn-rate page opens an incident; ack, deploy marker, mitigation, resolve; postmortem."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from genai_sre.alerting.config import AlertingConfig, DeliveryConfig, ReceiverConfig, RouteConfig
from genai_sre.alerting.router import AlertRouter
from genai_sre.events import Annotation
from genai_sre.incidents.postmortem import render_postmortem, write_postmortem
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import open_store
from genai_sre.telemetry.metrics import Metrics
from tests.alerting.helpers import FakeClock, RecordingReceiver, alert

T0 = 1_800_000_000.0


class Evidence:
    def __init__(self) -> None:
        self.asked: list[tuple[float, float, str | None]] = []

    def samples(self, start: float, end: float, limit: int, *, slo: str | None = None) -> list[dict[str, Any]]:
        self.asked.append((start, end, slo))
        return [
            {
                "id": f"ex-{i}",
                "at": start + 60 * i,
                "model": "gpt-x",
                "route": "/v1/chat/completions",
                "status": 200,
                "error": None,
                "slos": [slo] if slo else [],
                "question": "What is the refund window? [EMAIL]",
                "answer": "90 days, says policy 7.",
                "findings": [
                    {
                        "detector": "hallucination",
                        "name": "hallucination_risk",
                        "score": 0.9,
                        "label": "flagged",
                        "explanation": "answer not supported by context",
                        "features": [["nli_contradiction", 0.4], ["number_mismatch", 0.2]],
                    }
                ],
            }
            for i in range(3)
        ]

    def slo_figures(self, slo: str, start: float, end: float) -> dict[str, Any]:
        return {
            "objective": 0.99,
            "total": 1200,
            "bad": 310,
            "budget_consumed": 0.031,
            "budget_remaining": 0.62,
            "peak_burn_rate": 18.2,
            "window": "5m",
        }


def build(
    tmp_path: Path, clock: FakeClock, store_url: str = ""
) -> tuple[AlertRouter, IncidentService, RecordingReceiver, Metrics]:
    metrics = Metrics()
    service = IncidentService(open_store(store_url, tmp_path), clock, metrics)
    cfg = AlertingConfig(
        route=RouteConfig(
            receiver="chat",
            group_wait_s=10,
            group_interval_s=60,
            routes=(RouteConfig(receiver="incidents", matchers=('severity="page"',), continue_=True),),
        ),
        receivers=(ReceiverConfig("chat", "stdout"), ReceiverConfig("incidents", "incidents")),
        delivery=DeliveryConfig(log_file=None),
        silences_file=None,
    )
    chat = RecordingReceiver()
    router = AlertRouter(cfg, {"chat": chat, "incidents": service}, clock=clock, metrics=metrics)
    router.delivery.observe(service.on_delivery)
    return router, service, chat, metrics


def test_page_to_postmortem(tmp_path: Path, store_url: str) -> None:
    async def main() -> None:
        clock = FakeClock(T0)
        router, service, chat, metrics = build(tmp_path, clock, store_url)
        service.annotate(Annotation("deploy", T0 - 1200, "rollout", {"model": "gpt-x", "version": "2026-11-27"}))
        burn_start = T0 - 300
        page = alert(
            severity="page",
            starts_at=T0,
            labels={"model": "gpt-x"},
            annotations={"burn_started_at": burn_start, "runbook_url": "https://runbooks.example/chat"},
        )
        await router.submit(page)
        clock.advance(10)
        sent = await router.flush()
        await router.drain()
        (incident,) = service.list_incidents()
        assert incident.status == "open" and incident.severity == "SEV-2" and incident.opened_at == T0 + 10
        assert incident.labels["slo"] == "chat-availability"

        # the same page again (repeat) joins, never opens a second incident
        for n in sent:
            assert service.record(n) == incident.id
        assert len(service.list_incidents()) == 1

        clock.now = T0 + 130
        service.ack(incident.id, "looking")
        clock.now = T0 + 400
        service.note(incident.id, "rolled back gpt-x to the previous version", kind="mitigation")
        service.note(incident.id, "add an eval gate for refund questions", kind="action_item")
        clock.now = T0 + 900
        await router.submit(alert(severity="page", status="resolved", labels={"model": "gpt-x"}))
        clock.advance(60)
        await router.flush()
        await router.drain()
        final = service.get(incident.id)
        assert final is not None and final.status == "resolved" and final.resolved_at == T0 + 960

        kinds = [e.kind for e in service.timeline(incident.id)]
        assert kinds[0] == "deploy"
        assert kinds.index("alert_firing") < kinds.index("opened") < kinds.index("acknowledged")
        assert kinds.index("acknowledged") < kinds.index("mitigation") < kinds.index("alert_resolved")
        assert kinds[-1] == "resolved" and "notification" in kinds

        detail = service.detail(incident.id)
        assert detail["figures"] == {"time_to_detect_s": 300.0, "time_to_ack_s": 120.0, "time_to_resolve_s": 950.0}
        stats = service.stats()
        (model,) = stats.models
        assert (model.model, model.deploys, model.failed, model.change_failure_rate) == ("gpt-x", 1, 1, 1.0)
        assert model.recovery_s == 960 + 1200
        assert metrics.registry.get_sample_value("genai_sre_change_failure_ratio", {"model": "gpt-x"}) == 1.0
        assert metrics.registry.get_sample_value("genai_sre_incident_time_to_detect_seconds_sum") == 300.0

        evidence = Evidence()
        text = render_postmortem(service, incident.id, evidence)
        for heading in (
            "Summary",
            "Impact",
            "Detection",
            "Trigger",
            "Contributing factors",
            "Resolution",
            "Action items",
            "Lessons learned",
            "Timeline (UTC)",
            "Supporting information",
        ):
            assert f"\n## {heading}\n" in text
        assert evidence.asked == [(burn_start, T0 + 960, "chat-availability")]  # the SLO's own bad events
        assert "time to detect: 5.0 min" in text
        assert "310 of 1,200" in text and "3.10%" in text and "peak 18.2x (over 5m windows)" in text
        assert "deploy model=gpt-x version=2026-11-27 rollout" in text
        assert "`hallucination/hallucination_risk`: 3 of 3" in text and "`nli_contradiction`" in text
        assert "| add an eval gate for refund questions |" in text
        assert "_Needs a human:_" in text
        # the timeline section lists every timeline event, in order
        section = text.split("## Timeline (UTC)\n")[1].split("\n## ")[0]
        lines = [ln for ln in section.splitlines() if ln.startswith("- ")]
        assert lines[0].endswith("deploy: model=gpt-x version=2026-11-27 rollout")
        assert lines[1].endswith("DEGRADATION BEGINS (first 5m window burning above 1x)")
        stamps = [re.match(r"- (\S+ \S+)", ln).group(1) for ln in lines]  # type: ignore[union-attr]
        assert stamps == sorted(stamps)
        assert len(lines) == len(service.timeline(incident.id)) + 1
        assert any("INCIDENT BEGINS" in ln for ln in lines) and any("MITIGATED" in ln for ln in lines)
        assert lines[-1].split(" UTC ", 1)[1].startswith("INCIDENT ENDS")

        path = write_postmortem(service, incident.id)
        assert path == tmp_path / "postmortems" / f"incident-{incident.id}.md"
        assert path.read_text().startswith("# Postmortem: chat-availability burning (page)")
        service.store.close()

    asyncio.run(main())


def test_ticket_alone_opens_nothing(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock(T0)
    service = IncidentService(open_store(store_url, tmp_path), clock)
    from genai_sre.alerting.notification import Notification

    n = Notification("r", "{}:{}", "firing", {}, (alert(severity="ticket", starts_at=T0),), T0)
    assert service.record(n) is None
    assert service.list_incidents() == []
    service.store.close()
