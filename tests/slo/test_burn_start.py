"""Firing alerts carry when the burn began, for the incident's time to detect."""

from __future__ import annotations

from genai_sre.events import Alert
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import parse_slos

SLOS = """
slos:
  - name: avail
    objective: 99
    period: 30d
    sli: {kind: availability}
"""


def test_page_annotation_names_the_start_of_the_burn() -> None:
    t = [1_000_000.0]
    engine = SLOEngine(parse_slos(SLOS), clock=lambda: t[0])
    start = t[0]
    for _ in range(3 * 86400 // 60):  # three healthy days, one event a second, in minute steps
        engine.record("avail", True, t[0], count=60)
        t[0] += 60
    assert engine.evaluate() == []
    burn_began = t[0]
    alerts: list[Alert] = []
    while not alerts:  # 50% errors from now on
        engine.record("avail", True, t[0], count=30)
        engine.record("avail", False, t[0], count=30)
        t[0] += 60
        alerts = [a for a in engine.evaluate() if a.labels["severity"] == "page"]
    began = float(alerts[0].annotations["burn_started_at"])
    assert burn_began - 300 <= began <= burn_began, (began - start, burn_began - start)
    assert t[0] - began <= 21 * 60  # the 1h window crosses 14.4x after about 17 minutes at 50% errors
