"""The demo's biased-refusals phase fires the fairness alert, with its evidence, before the phase ends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from genai_sre.demo.config import load_demo_config
from genai_sre.demo.driver import run_demo
from genai_sre.demo.view import evidence_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_biased_phase_fires_the_fairness_alert_with_evidence(tmp_path: Path) -> None:
    # The shipped demo (sidecar config, detector options, SLOs, workload) with its scenario cut to a
    # short healthy start and the biased-refusals phase exactly as shipped.
    shipped = yaml.safe_load((ROOT / "configs" / "scenarios" / "demo.yaml").read_text())
    phases = {p["name"]: p for p in shipped["phases"]}
    healthy = {**phases["healthy"], "duration_s": 20}
    biased = phases["biased-refusals"]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**shipped, "phases": [healthy, biased]}))
    cfg = replace(load_demo_config(ROOT / "configs" / "demo.yaml"), scenario=str(scenario))
    duration = healthy["duration_s"] + biased["duration_s"]

    result = asyncio.run(run_demo(cfg, duration, tmp_path / "data"))

    fired = [a for a in result.sidecar.recent_alerts if a.status == "firing" and a.labels.get("slo") == "fairness"]
    assert fired, "no fairness alert during the biased phase"
    first = min(fired, key=lambda a: a.starts_at)
    assert result.phase_at(first.starts_at) == "biased-refusals"
    assert first.starts_at - result.started_at < duration  # before the phase (and the traffic) ended
    ann = first.annotations
    assert ann["evidence_metric"] == "refusal" and ann["evidence_groups"].startswith("group_b|")
    assert float(ann["evidence_gap"]) > 0.2 and float(ann["evidence_ci_low"]) > 0
    assert "group_b" in evidence_text(ann) and "units of evidence" in evidence_text(ann)
