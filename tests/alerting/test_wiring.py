"""The router as the app wires it: from a YAML file, ticking on its own, feeding incidents and a JSONL file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from genai_sre.alerting.router import AlertRouter
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore
from genai_sre.telemetry.metrics import Metrics
from tests.alerting.helpers import alert, wait_for

CONFIG = """
version: genai-sre/alerting/v1
route:
  receiver: file
  group_wait_s: 0.1
  group_interval_s: 0.2
  routes:
    - matchers: ['severity="page"']
      receiver: incidents
      continue: true
    - receiver: file
inhibit_rules:
  - {source_matchers: ['severity="page"'], target_matchers: ['severity="ticket"'], equal: [slo]}
receivers:
  - {name: file, type: file, options: {path: alerts.jsonl}}
  - {name: incidents, type: incidents}
tick_s: 0.05
"""


def test_from_yaml_with_ticker(tmp_path: Path) -> None:
    cfg = tmp_path / "alerting.yaml"
    cfg.write_text(CONFIG)

    async def main() -> None:
        metrics = Metrics()
        service = IncidentService(IncidentStore.open(tmp_path), metrics=metrics)
        router = AlertRouter.from_config(cfg, metrics=metrics, data_dir=tmp_path, incidents=service)
        await router.start()
        try:
            await router.submit(alert(severity="page"))
            await router.submit(alert(severity="ticket", labels={"alertname": "Ticket"}))
            await wait_for(lambda: len(service.list_incidents()) == 1 and (tmp_path / "alerts.jsonl").exists(), 5)
            await router.submit(alert(severity="page", status="resolved"))
            await wait_for(lambda: service.list_incidents()[0].status == "resolved", 5)
        finally:
            await router.aclose()
        lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        severities = [(b["status"], b["commonLabels"]["severity"]) for b in lines]
        assert ("firing", "page") in severities
        assert ("firing", "ticket") in severities  # uninhibited once the page resolved
        assert severities.index(("firing", "page")) < severities.index(("firing", "ticket"))
        log = [json.loads(x) for x in (tmp_path / "deliveries.jsonl").read_text().splitlines()]
        assert {r["receiver"] for r in log} == {"file", "incidents"} and all(r["outcome"] == "sent" for r in log)
        sent = metrics.registry.get_sample_value("genai_sre_alert_notifications_total",
                                                 {"receiver": "incidents", "outcome": "sent"})
        assert sent is not None and sent >= 2
        assert metrics.registry.get_sample_value("genai_sre_alerts_suppressed_total", {"reason": "inhibited"}) == 1
        assert metrics.registry.get_sample_value("genai_sre_incidents_opened_total", {"severity": "SEV-2"}) == 1
        service.store.close()

    asyncio.run(main())
