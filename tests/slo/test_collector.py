from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from genai_sre.slo.collector import SLOCollector
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import parse_slos
from genai_sre.telemetry.metrics import Metrics

SLOS = parse_slos("slos:\n  - {name: avail, objective: 99.9, sli: {kind: availability}}\n")


def test_engine_state_is_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    Metrics(registry)  # the collected rows build no instrument: no duplicate names
    engine = SLOEngine(SLOS, clock=lambda: 1000.0)
    registry.register(SLOCollector(engine))
    assert 'genai_sre_slo_error_ratio{' not in generate_latest(registry).decode()
    engine.record("avail", True, at=990.0, count=90)
    engine.record("avail", False, at=995.0, count=10)
    text = generate_latest(registry).decode()
    assert 'genai_sre_slo_error_ratio{slo="avail",window="5m"} 0.1' in text
    assert 'genai_sre_slo_burn_rate{slo="avail",window="1h"} 100.0' in text
    assert 'genai_sre_slo_window_events{slo="avail",window="30d"} 100.0' in text
    assert 'genai_sre_slo_error_budget_remaining_ratio{slo="avail"} -99.0' in text
    assert 'genai_sre_slo_objective_ratio{slo="avail"} 0.999' in text
    assert 'genai_sre_slo_alert_firing{severity="page",slo="avail"} 1.0' in text
