from __future__ import annotations

from pathlib import Path

from genai_sre.telemetry.metrics import METRICS, Metrics
from genai_sre.telemetry.metrics_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_docs_metrics_md_lists_every_metric() -> None:
    assert (ROOT / "docs" / "metrics.md").read_text() == render(), (
        "regenerate: python -m genai_sre.telemetry.metrics_doc"
    )


def test_names_follow_the_conventions() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for m in METRICS:
        assert m.name.startswith(("genai_sre_", "gen_ai_")), m.name
        assert not m.name.endswith("_total"), m.name
        assert "user" not in m.labels and "prompt" not in m.labels and "request_id" not in m.labels


def test_instruments_build_on_a_fresh_registry() -> None:
    a, b = Metrics(), Metrics()  # no clash: each has its own registry
    assert a.registry is not b.registry
    a.counter("genai_sre_findings").labels("d", "n", "flagged", "/v1/chat/completions", "m", "acme", "shop").inc()
