"""The breaker with two real upstreams: trip, streaming on the backup, probes, fail-back, records, pass-through."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from genai_sre.config import FallbackConfig
from genai_sre.telemetry.attribution import PROBE_TENANT
from tests.healing.twins import Twins, twins

pytestmark = pytest.mark.integration


def _wait(check: Callable[[], bool], tw: Twins, client: httpx.Client, timeout_s: float = 20.0) -> None:
    """Send traffic (probes ride on it) until `check()` holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        tw.chat(client)
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _mitigations(tw: Twins, at_least: int = 0) -> list[dict[str, object]]:
    return [{"text": a.text, **a.labels} for a in tw.mitigations(at_least)]


def test_breaker_fails_over_streams_to_the_backup_and_fails_back() -> None:
    fallback = FallbackConfig(upstream="backup", trip_after_failures=3, probe_interval_s=0.2,
                              recover_after_successes=2)
    with twins(fallback) as tw, httpx.Client(timeout=10) as client:
        assert tw.chat(client).status_code == 200 and tw.primary.count == 1
        tw.set_primary("down")
        statuses = [tw.chat(client).status_code for _ in range(6)]
        # exactly trip_after_failures requests fail; the breaker is open before the next one is forwarded
        assert statuses == [503, 503, 503, 200, 200, 200]
        assert tw.backup.count == 3

        # a streaming request is decided before its first byte: it goes to the backup too
        before = tw.backup.count
        stream = tw.chat(client, stream=True)
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert b"data: [DONE]" in stream.content and tw.backup.count == before + 1

        snap = tw.proxy_counters()
        assert snap.gauges["genai_sre_failover_active"][("primary",)] == 1.0
        assert snap.counters["genai_sre_failover"][("primary", "breaker")] == 1
        # while down, the primary sees the requests that tripped it, then only the mirrored probes
        time.sleep(0.25)
        tw.chat(client)
        time.sleep(0.1)
        snap = tw.proxy_counters()
        probes = snap.counters.get("genai_sre_failover_probes", {})
        assert probes.get(("primary", "error"), 0) >= 1 and tw.primary.count == 4 + probes[("primary", "error")]
        # the probes are counted as the sidecar's own traffic, never as a user's
        outcomes = snap.counters["outcomes"]
        assert any(k[1] == "primary" and k[4] == "1" for k in outcomes)
        assert sum(v for k, v in snap.counters["genai_sre_requests"].items()
                   if k[0] == "primary" and k[4] == PROBE_TENANT) >= 1

        records = _mitigations(tw, 1)
        assert len(records) == 1
        assert records[0]["action"] == "failover" and records[0]["reason"] == "breaker"
        assert "failover primary -> backup" in str(records[0]["text"]) and "HTTP 503" in str(records[0]["text"])

        # the primary recovers: two good probes in a row and the traffic returns
        tw.set_primary("healthy")
        _wait(lambda: tw.proxy_counters().gauges["genai_sre_failover_active"][("primary",)] == 0.0, tw, client)
        records = _mitigations(tw, 2)
        assert [r["action"] for r in records] == ["failover", "failback"]
        assert "failback primary" in str(records[1]["text"]) and "2 consecutive successful probes" in str(
            records[1]["text"]
        )
        before_primary, before_backup = tw.primary.count, tw.backup.count
        assert tw.chat(client).status_code == 200
        assert (tw.primary.count, tw.backup.count) == (before_primary + 1, before_backup)
        health = tw.sidecar.agent.health()
        assert health["failover"]["primary"]["active"] is False


def test_without_a_fallback_failures_pass_through_unchanged() -> None:
    with twins(None) as tw, httpx.Client(timeout=10) as client:
        tw.set_primary("down")
        responses = [tw.chat(client) for _ in range(12)]
        assert [r.status_code for r in responses] == [503] * 12
        assert responses[0].json()["error"]["message"] == "the simulated upstream is failing"
        assert tw.backup.count == 0 and tw.primary.count == 12
        snap = tw.proxy_counters()
        assert "genai_sre_failover_active" not in snap.gauges and "genai_sre_failover" not in snap.counters
        assert tw.sidecar.failover is None and _mitigations(tw) == []


def test_retry_before_first_byte_hides_the_primary_failure_from_the_client() -> None:
    fallback = FallbackConfig(upstream="backup", trip_after_failures=100, retry_before_first_byte=True)
    with twins(fallback) as tw, httpx.Client(timeout=10) as client:
        tw.set_primary("down")
        statuses = [tw.chat(client, stream=i % 2 == 1).status_code for i in range(6)]
        assert statuses == [200] * 6
        assert tw.primary.count == 6 and tw.backup.count == 6  # each tried once on the primary, once on the backup
        snap = tw.proxy_counters()
        assert snap.counters["genai_sre_failover_retries"][("primary", "5xx")] == 6
        assert snap.gauges["genai_sre_in_flight_requests"].get(("primary",), 0) == 0
        assert snap.gauges["genai_sre_in_flight_requests"].get(("backup",), 0) == 0
        # each request counts once, with the answer the client got
        requests = snap.counters["genai_sre_requests"]
        assert sum(v for k, v in requests.items() if k[0] == "backup" and k[3] == "2xx") == 6
        assert sum(v for k, v in requests.items() if k[0] == "primary") == 0


def test_the_fallback_model_replaces_the_clients_and_fallback_errors_reach_the_client() -> None:
    fallback = FallbackConfig(upstream="backup", model="backup-model", trip_after_failures=2, probe_interval_s=60)
    with twins(fallback) as tw, httpx.Client(timeout=10) as client:
        tw.set_primary("down")
        assert [tw.chat(client).status_code for _ in range(2)] == [503, 503]
        answer = tw.chat(client, model="gpt-primary")
        assert answer.status_code == 200 and answer.json()["model"] == "backup-model"
        # the fallback's own failures are not hidden: clients get its errors, counted under its name
        tw.backup.scenario = tw.primary.scenario
        tw.backup.pinned = "down"
        failed = tw.chat(client)
        assert failed.status_code == 503
        snap = tw.proxy_counters()
        assert sum(v for k, v in snap.counters["genai_sre_requests"].items() if k[0] == "backup" and k[3] == "5xx") == 1
