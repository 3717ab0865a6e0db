"""The generated rules under the real `promtool` (2.42): syntax, alert timing, and parity with the engine.

Three promtool test files run side by side (they take most of this module's
time): a 10% error spike at 1-minute steps and a steady 2x burn at 3-minute
steps, each after 3 days of healthy history so the long windows are full;
and a day of zero traffic followed by a day of one failure an hour (below
the minimum event count) at 2-minute steps. Parity: the same series go
through the in-process engine; for every state change the engine makes,
promtool must agree one step before and one step after it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_sre.slo.engine import alert_labels
from genai_sre.slo.rules import render, rule_groups
from genai_sre.slo.spec import SLOFile, parse_slos
from tests.servers import binary, promtool
from tests.slo.scenarios import Series, alert_check, input_series, parity_checks, run_engine, transitions

DAY_MIN = 1440
HEALTHY = 3 * DAY_MIN  # minutes of history before anything happens

SPIKE_SLOS = parse_slos(
    """
service: test
min_events: 20
self_monitoring: {enabled: false}
slos:
  - {name: avail, objective: 99.9, period: 30d, sli: {kind: availability}}
"""
)

STEADY_SLOS = parse_slos(
    """
service: test
min_events: 20
self_monitoring: {enabled: false}
slos:
  - {name: steady, objective: 99.9, sli: {kind: availability}}
"""
)

QUIET_SLOS = parse_slos(
    """
service: test
min_events: 20
self_monitoring: {enabled: false}
slos:
  - {name: sparse, objective: 99.9, sli: {kind: availability}}
"""
)


def spike_series() -> dict[str, Series]:
    # 100 events/min; 60 minutes at 10% errors from minute 4321; 8 hours healthy after.
    s = Series().extend(HEALTHY + 1, 100, 0).extend(60, 90, 10).extend(480, 100, 0)
    s.good[0] = 0
    return {"avail": s}


def steady_series() -> dict[str, Series]:
    # 3-minute steps (the 5m windows still hold two samples): 3000 events/step, then a 2x burn
    # (0.2% errors) for 40 hours.
    steady = Series().extend(HEALTHY // 3 + 1, 3000, 0).extend(800, 2994, 6)
    steady.good[0] = 0
    return {"steady": steady}


def quiet_series() -> dict[str, Series]:
    # 2-minute steps. A day with the counters exported but no traffic at all, then a day of one failed
    # request an hour (every 30 steps): 100% errors, but never `min_events` in both windows of a pair.
    steps = 2 * DAY_MIN // 2 + 1
    sparse = Series().extend(DAY_MIN // 2 + 1, 0, 0)
    while len(sparse.good) < steps:
        sparse.extend(1, 0, 1).extend(29, 0, 0)
    del sparse.good[steps:], sparse.bad[steps:]
    return {"sparse": sparse}


def _test_file(tmp: Path, name: str, slos: SLOFile, series: dict[str, Series], step_min: int,
               checks: list[dict[str, Any]], dense_from: int = 0, sparse_every: int = 1) -> Path:
    (tmp / f"{name}.rules.yml").write_text(render(slos))
    doc = {
        "rule_files": [f"{name}.rules.yml"],
        "evaluation_interval": f"{step_min}m",
        # promtool evaluates groups in random order unless told; Prometheus runs them concurrently.
        # Recordings first, as a Prometheus whose groups were evaluated just before the alerts.
        "group_eval_order": [g["name"] for g in rule_groups(slos)],
        "tests": [{
            "name": name,
            "interval": f"{step_min}m",
            "input_series": input_series(series, dense_from, sparse_every),
            "promql_expr_test": checks,
        }],
    }
    path = tmp / f"{name}.test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _spike_checks(engine: dict[tuple[str, str], list[bool]]) -> list[dict[str, Any]]:
    name = SPIKE_SLOS.get("avail").alert_name
    checks = [
        alert_check(name, "avail", "page", HEALTHY - 1, 60, False),
        alert_check(name, "avail", "ticket", HEALTHY - 1, 60, False),
        alert_check(name, "avail", "page", HEALTHY + 8, 60, False),  # 1h ratio 1.33% < 14.4 x 0.1%
        alert_check(name, "avail", "page", HEALTHY + 9, 60, True),  # 1.5%: pages in minute 9
        alert_check(name, "avail", "ticket", HEALTHY + 45, 60, True),  # 1d ratio > 0.3%
        alert_check(name, "avail", "page", HEALTHY + 70, 60, True),  # 10 min after recovery: 30m/6h pair holds
        alert_check(name, "avail", "page", HEALTHY + 100, 60, False),  # 40 min after: page resolved
        alert_check(name, "avail", "ticket", HEALTHY + 100, 60, True),
        alert_check(name, "avail", "ticket", HEALTHY + 540, 60, False),  # 6h after the last error: resolved
    ]
    # The full label set of the page equals the engine's.
    labels = {**alert_labels(SPIKE_SLOS, SPIKE_SLOS.get("avail"), "page"), "alertstate": "firing"}
    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "alertname")
    checks.append({
        "expr": f'ALERTS{{alertname="{name}", severity="page"}}',
        "eval_time": f"{HEALTHY + 9}m",
        "exp_samples": [{"labels": f'ALERTS{{alertname="{name}",{text}}}', "value": 1}],
    })
    return checks + parity_checks(SPIKE_SLOS, engine, 60)


def _steady_checks(engine: dict[tuple[str, str], list[bool]], steps: int) -> list[dict[str, Any]]:
    name = STEADY_SLOS.get("steady").alert_name
    return [
        _never(name, "steady", "page", (steps - 1) * 3),
        alert_check(name, "steady", "ticket", HEALTHY // 3 + 20 * 30, 180, False),  # 30h in: 3d ratio < 1x
        alert_check(name, "steady", "ticket", steps - 1, 180, True),  # 40h in: 3d ratio > 0.1%
        *parity_checks(STEADY_SLOS, engine, 180),
    ]


def _quiet_checks(engine: dict[tuple[str, str], list[bool]], steps: int) -> list[dict[str, Any]]:
    name = QUIET_SLOS.get("sparse").alert_name
    checks = [_never(name, "sparse", "page", (steps - 1) * 2), _never(name, "sparse", "ticket", (steps - 1) * 2)]
    return checks + parity_checks(QUIET_SLOS, engine, 120)


def _never(name: str, slo: str, severity: str, end_min: int) -> dict[str, Any]:
    """The alert never fired during the run (ALERTS has no sample in the last 8 days)."""
    return {
        "expr": f'count(max_over_time(ALERTS{{slo="{slo}", severity="{severity}", alertname="{name}"}}[8d]))',
        "eval_time": f"{end_min}m",
        "exp_samples": [],
    }


@pytest.fixture(scope="module")
def promtool_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    tmp = tmp_path_factory.mktemp("promtool")
    spike, steady, quiet = spike_series(), steady_series(), quiet_series()
    steady_steps, quiet_steps = len(steady["steady"].good), len(quiet["sparse"].good)
    files = {
        # Scraped every 5 minutes until 400 minutes before the spike (the 6h window then is dense).
        "spike": _test_file(
            tmp, "spike", SPIKE_SLOS, spike, 1, _spike_checks(run_engine(SPIKE_SLOS, spike, 60)), HEALTHY - 400, 5
        ),
        "steady": _test_file(
            tmp, "steady", STEADY_SLOS, steady, 3, _steady_checks(run_engine(STEADY_SLOS, steady, 180), steady_steps)
        ),
        "quiet": _test_file(
            tmp, "quiet", QUIET_SLOS, quiet, 2, _quiet_checks(run_engine(QUIET_SLOS, quiet, 120), quiet_steps),
            DAY_MIN // 2 - 200, 30,  # no traffic at all before: scraped every hour
        ),
    }
    # The three runs are independent: start them together.
    procs = {
        k: subprocess.Popen([binary("promtool"), "test", "rules", p.name], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
        for k, p in files.items()
    }
    return {k: (p.wait(timeout=300), p.communicate()[0]) for k, p in procs.items()}


def test_generated_rules_pass_promtool_check(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(render(SPIKE_SLOS))
    promtool("check", "rules", path, timeout_s=60)


def test_engine_pages_in_minute_nine_and_resolves() -> None:
    states = run_engine(SPIKE_SLOS, spike_series(), 60)
    page, ticket = states[("avail", "page")], states[("avail", "ticket")]
    assert transitions(page)[0] == HEALTHY + 9
    assert not page[HEALTHY + 8]
    assert ticket[HEALTHY + 45] and not page[HEALTHY + 100] and ticket[HEALTHY + 100]
    assert not page[-1] and not ticket[-1]


def test_engine_steady_burn_tickets_without_paging() -> None:
    states = run_engine(STEADY_SLOS, steady_series(), 180)
    assert not any(states[("steady", "page")])
    assert states[("steady", "ticket")][-1]
    quiet = run_engine(QUIET_SLOS, quiet_series(), 120)
    assert not any(any(v) for v in quiet.values())


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["spike", "steady", "quiet"])
def test_promtool_scenarios_and_parity(promtool_results: dict[str, tuple[int, str]], scenario: str) -> None:
    rc, output = promtool_results[scenario]
    assert rc == 0, output
