"""Through the sidecar: inventing answers raise the risk and burn the grounded-answers SLO; faithful ones do not.

The mock upstream answers from the system prompt's document (faithful) or
changes a number and adds an invented claim (invent). The sidecar is wired as
`genai-sre serve` wires it, with the hallucination detector and an SLO file of
second-scale windows.
"""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from genai_sre.config import Config, DetectorConfig
from genai_sre.mock.scenario import Latency, Phase, Scenario
from tests.harness import stack

pytestmark = pytest.mark.integration

SLO_FILE = """
service: it
min_events: 5
alert_windows:
  page: [{budget_percent: 2, long: 1m, short: 15s}]
  ticket: [{budget_percent: 10, long: 5m, short: 30s}]
self_monitoring: {enabled: false}
slos:
  - name: grounded-answers
    objective: 97
    period: 1h
    sli: {kind: quality, detector: hallucination, finding: hallucination_risk, attribute: slo_flagged, threshold: 0.5}
"""

DOCUMENT = (
    "The Golden Gate Bridge opened in May 1937 after four years of construction. Its main span is 1280 metres "
    "long and its towers rise 227 metres above the water. About 112,000 vehicles cross it every day. "
    "The bridge is painted in a colour called International Orange, chosen by architect Irving Morrow."
)
QUESTIONS = [
    "When did the Golden Gate Bridge open?",
    "How long is the main span and how tall are the towers?",
    "How many vehicles cross the bridge every day?",
    "Who chose the colour of the bridge?",
]


def _run(invent: float, tmp_path: Path) -> tuple[str, list[str]]:
    slo_path = tmp_path / f"slos-{invent}.yaml"
    slo_path.write_text(SLO_FILE)
    scenario = Scenario(phases=(Phase(name="p", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000, invent_rate=invent),))

    def configure(cfg: Config) -> Config:
        detectors = (DetectorConfig(name="hallucination", type="hallucination"),)
        return replace(cfg, detectors=detectors, slo=replace(cfg.slo, file=str(slo_path), evaluation_interval_s=0.5))

    with stack(scenario, configure=configure) as s:
        with httpx.Client(base_url=s.proxy_url, timeout=30) as client:
            for i in range(24):
                messages = [{"role": "system", "content": DOCUMENT}, {"role": "user", "content": QUESTIONS[i % 4]}]
                assert client.post("/v1/chat/completions", json={"model": "m", "messages": messages}).status_code == 200
        s.idle()
        engine = s.sidecar.slo_engine
        assert engine is not None
        firing: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            firing = list(engine.status()[0].firing)
            if firing or invent == 0.0:
                break
            time.sleep(0.25)
        with urllib.request.urlopen(f"{s.admin_url}/metrics", timeout=5) as resp:
            return resp.read().decode(), firing


def _value(text: str, pattern: str) -> float:
    m = re.search(pattern + r"\s+([0-9.e+-]+)", text)
    return float(m.group(1)) if m else 0.0


def test_inventing_upstream_burns_the_grounded_answers_slo(tmp_path: Path) -> None:
    text, firing = _run(1.0, tmp_path)
    bad = _value(text, r'genai_sre_slo_events_total\{outcome="bad",slo="grounded-answers"\}')
    assert bad >= 12, text  # at the strict SLO threshold (1% false alarms on dev); 19 of 24 when written
    risk_sum = _value(text, r'genai_sre_evaluation_score_sum\{[^}]*detector="hallucination"[^}]*\}')
    risk_count = _value(text, r'genai_sre_evaluation_score_count\{[^}]*detector="hallucination"[^}]*\}')
    assert risk_count == 24 and risk_sum / risk_count > 0.7
    assert "page" in firing


def test_faithful_upstream_does_not(tmp_path: Path) -> None:
    text, firing = _run(0.0, tmp_path)
    assert _value(text, r'genai_sre_slo_events_total\{outcome="good",slo="grounded-answers"\}') == 24
    assert _value(text, r'genai_sre_slo_events_total\{outcome="bad",slo="grounded-answers"\}') == 0
    risk_sum = _value(text, r'genai_sre_evaluation_score_sum\{[^}]*detector="hallucination"[^}]*\}')
    assert risk_sum / 24 < 0.3
    assert firing == []
