"""An SLO page scoped to an upstream fails it over without a breaker trip; fail-back waits for good probes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from genai_sre.config import Config, DetectorConfig, FallbackConfig
from genai_sre.healing.controller import FailoverController
from genai_sre.healing.state import read_state
from tests.healing.twins import Twins, twins

pytestmark = pytest.mark.integration

# Short windows (page: 30 s and 5 s) so a test sees a page fire and resolve in seconds.
SLOS = """\
version: genai-sre/slos/v1
service: test
min_events: 5
alert_windows:
  page: [{budget_percent: 1, long: 30s, short: 5s}]
  ticket: [{budget_percent: 10, long: 60s, short: 10s}]
self_monitoring: {enabled: false}
slos:
  - name: primary-availability
    objective: 99
    period: 1h
    sli: {kind: availability}
    filters: {upstreams: [primary]}
  - name: primary-grounded
    objective: 90
    period: 1h
    sli: {kind: quality, detector: hallucination, finding: hallucination_risk, attribute: slo_flagged, threshold: 0.5}
    filters: {upstreams: [primary]}
  - name: all-availability
    objective: 99
    period: 1h
    sli: {kind: availability}
"""

FALLBACK = FallbackConfig(upstream="backup", trip_after_failures=1000, probe_interval_s=0.3, recover_after_successes=3)


def _configure(tmp_path: Path, detectors: bool) -> Callable[[Config], Config]:
    slo_file = tmp_path / "slos.yaml"
    slo_file.write_text(SLOS)

    def configure(cfg: Config) -> Config:
        cfg = replace(cfg, slo=replace(cfg.slo, file=str(slo_file), evaluation_interval_s=3600))
        if detectors:
            cfg = replace(cfg, detectors=(DetectorConfig(name="hallucination", type="hallucination"),))
        return cfg

    return configure


def _evaluate(tw: Twins) -> None:
    tw.stack.idle()
    tw.stack.lt.call(tw.sidecar.evaluate_now())


def _reasons(tw: Twins) -> list[str]:
    return list(tw.sidecar.failover.status()["primary"]["reasons"])


def _traffic_until(tw: Twins, client: httpx.Client, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tw.chat(client)
        time.sleep(0.1)
        _evaluate(tw)
        if check():
            return
    raise AssertionError("condition not reached in time")


def test_an_availability_page_fails_over_without_a_breaker_trip_and_fails_back(tmp_path: Path) -> None:
    with twins(FALLBACK, _configure(tmp_path, detectors=False)) as tw, httpx.Client(timeout=10) as client:
        tw.set_primary("down")
        assert {tw.chat(client).status_code for _ in range(10)} == {503}
        _evaluate(tw)
        assert _reasons(tw) == ["slo:primary-availability"]
        assert tw.chat(client).status_code == 200 and tw.backup.count >= 1
        snap = tw.proxy_counters()
        assert snap.counters["genai_sre_failover"] == {("primary", "slo:primary-availability"): 1}
        (record,) = tw.mitigations(1)
        assert record.labels["reason"] == "slo:primary-availability" and "burn rate" in record.text
        data_dir = Path(tw.sidecar.config.storage.data_dir)
        for _ in range(200):  # written off the loop
            state = read_state(data_dir)
            if state is not None and state["upstreams"]["primary"]["active"]:
                break
            time.sleep(0.02)
        assert state is not None and state["upstreams"]["primary"]["active"] is True
        assert state["upstreams"]["primary"]["reasons"] == ["slo:primary-availability"] and state["running"]

        # the page resolves (the primary gets no user traffic) but the probes still fail: held
        _traffic_until(tw, client, lambda: "page" not in tw.sidecar.slo_engine.status()[0].firing)
        for _ in range(5):
            tw.chat(client)
            time.sleep(0.1)
        _evaluate(tw)
        assert _reasons(tw) == ["slo:primary-availability"]
        # healthy again: three good probes and the traffic returns
        tw.set_primary("healthy")
        _traffic_until(tw, client, lambda: not _reasons(tw))
        records = tw.mitigations(2)
        assert [r.labels["action"] for r in records] == ["failover", "failback"]
        assert "last 3 probes were good" in records[1].text
        assert ("primary", "breaker") not in tw.proxy_counters().counters["genai_sre_failover"]
        # the probes never counted in the user SLIs: the unscoped SLO saw only user requests
        unscoped = next(s for s in tw.sidecar.slo_engine.status() if s.name == "all-availability")
        requests = tw.proxy_counters().counters["outcomes"]
        user = sum(v for k, v in requests.items() if k[4] == "0")
        assert unscoped.events_good + unscoped.events_bad == user


@pytest.mark.slow
def test_an_inventing_primary_is_replaced_until_probes_score_it_grounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts: list[tuple[str, bool]] = []
    heard = FailoverController.on_probe

    def on_probe(self: FailoverController, slo: str, good: bool) -> None:
        verdicts.append((slo, good))
        heard(self, slo, good)

    monkeypatch.setattr(FailoverController, "on_probe", on_probe)
    with twins(FALLBACK, _configure(tmp_path, detectors=True)) as tw, httpx.Client(timeout=30) as client:
        tw.set_primary("inventing")
        assert {tw.chat(client).status_code for _ in range(12)} == {200}  # nothing for a breaker to see
        _evaluate(tw)
        assert _reasons(tw) == ["slo:primary-grounded"]
        before = tw.backup.count
        assert tw.chat(client).status_code == 200 and tw.backup.count == before + 1
        assert ("primary", "breaker") not in tw.proxy_counters().counters["genai_sre_failover"]

        # still inventing: the page resolves once the primary's window empties, the probes keep failing
        _traffic_until(tw, client, lambda: "page" not in next(
            s for s in tw.sidecar.slo_engine.status() if s.name == "primary-grounded").firing)
        for _ in range(8):
            tw.chat(client)
            time.sleep(0.1)
        _evaluate(tw)
        assert _reasons(tw) == ["slo:primary-grounded"]
        assert ("primary-grounded", False) in verdicts  # the probes were scored, and scored as inventing
        tw.set_primary("healthy")
        _traffic_until(tw, client, lambda: not _reasons(tw))
        texts = [a.text for a in tw.mitigations(2)]
        assert "failover primary -> backup: reason=slo:primary-grounded" in texts[0]
        assert texts[-1].startswith("failback primary")
        assert [good for slo, good in verdicts if slo == "primary-grounded"][-3:] == [True] * 3
