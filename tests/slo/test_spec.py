from __future__ import annotations

from pathlib import Path

import pytest

from genai_sre.errors import ConfigError
from genai_sre.slo.spec import format_duration, load_slos, parse_duration, parse_slos

REPO = Path(__file__).resolve().parents[2]


def test_shipped_slo_file_loads_with_the_issue_defaults() -> None:
    slos = load_slos(REPO / "configs" / "slos.yaml", environ={})
    by_name = {s.name: s for s in slos.slos}
    assert by_name["chat-availability"].objective == 99.5
    assert by_name["chat-availability"].sli.kind == "availability"
    ttft = by_name["chat-ttft"]
    assert (ttft.objective, ttft.sli.kind, ttft.sli.metric, ttft.sli.threshold_s) == (99, "latency", "ttft", 2.0)
    grounded = by_name["grounded-answers"]
    assert grounded.sli.kind == "quality" and not grounded.alerting.page.enabled and grounded.alerting.ticket.enabled
    assert by_name["fairness"].sli.kind == "time_slice" and by_name["fairness"].sli.finding == "fairness_disparity"
    assert all(s.period == "30d" for s in slos.slos)
    assert ttft.alerting.runbook_url.startswith("https://")


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("1h30m", 5400), ("30d", 2592000), ("15s", 15), ("1w", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_format_duration_round_trips_the_workbook_windows() -> None:
    for text in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "28d", "90s"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("bad", ["", "5", "m5", "5x", "0m", "1h 5m"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_errors_name_file_line_and_key() -> None:
    text = "slos:\n  - name: a\n    objective: 101\n    sli: {kind: availability}\n"
    with pytest.raises(ConfigError, match=r"slos.yaml:2: slos\[0\].*objective must be a percentage"):
        parse_slos(text, "slos.yaml")
    with pytest.raises(ConfigError, match=r"slos.yaml:4: slos\[0\].sli.kind: must be one of"):
        parse_slos("slos:\n  - name: a\n    objective: 99\n    sli: {kind: nope}\n", "slos.yaml")
    with pytest.raises(ConfigError, match="latency SLI needs a positive threshold_s"):
        parse_slos("slos:\n  - {name: a, objective: 99, sli: {kind: latency}}\n", "slos.yaml")
    with pytest.raises(ConfigError, match="quality SLI needs the detector"):
        parse_slos("slos:\n  - {name: a, objective: 99, sli: {kind: quality, threshold: 0.5}}\n")
    with pytest.raises(ConfigError, match="unknown key 'objectiv'"):
        parse_slos("slos:\n  - {name: a, objectiv: 99, sli: {kind: availability}}\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_slos("slos:\n  - {name: a, objective: 99, sli: {kind: availability}}\n"
                   "  - {name: a, objective: 98, sli: {kind: availability}}\n")
    with pytest.raises(ConfigError, match="label 'severity' is set by genai-sre"):
        parse_slos("slos:\n  - {name: a, objective: 99, sli: {kind: availability},"
                   " alerting: {labels: {severity: x}}}\n")


def test_factors_scale_with_the_period() -> None:
    slos = parse_slos("slos:\n  - {name: a, objective: 99.9, period: 28d, sli: {kind: availability}}\n")
    period = slos.slos[0].period_s
    factors = [w.factor(period) for w in (*slos.alert_windows.page, *slos.alert_windows.ticket)]
    assert factors == [13.44, 5.6, 2.8, 0.9333333333]
    assert [w.factor(30 * 86400) for w in slos.alert_windows.page] == [14.4, 6.0]
    assert slos.slos[0].error_budget == 0.001
    assert slos.slos[0].alert_name == "ABudgetBurn"
