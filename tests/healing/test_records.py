"""Where on-call reads what the sidecar did: the admin API, the CLI, the incident timeline, the postmortem,
`slo status`; and the config checks that keep fail-over loop-free."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from genai_sre.alerting.notification import Notification
from genai_sre.cli import main
from genai_sre.config import load_config
from genai_sre.errors import ConfigError
from genai_sre.healing.controller import Mitigation
from genai_sre.healing.state import write_state
from genai_sre.incidents.postmortem import render_postmortem
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import open_store
from tests.alerting.helpers import FakeClock, alert
from tests.incidents.test_api import READ, WRITE, call, serve

T0 = 1_800_000_000.0


def _failover(at: float) -> Mitigation:
    return Mitigation(at, "primary", "backup", "failover", "breaker",
                      "failover primary -> backup: reason=breaker; breaker opened after 5 consecutive failures")


def _failback(at: float) -> Mitigation:
    return Mitigation(at, "primary", "backup", "failback", "breaker",
                      "failback primary: reason=breaker cleared; breaker closed after 3 consecutive successful probes")


def test_mitigations_land_on_the_open_incident_and_in_the_postmortem_resolution(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    service = IncidentService(open_store("", tmp_path), clock)
    page = alert(severity="page", starts_at=T0)
    notification = Notification("incidents", "g", "firing", {"slo": "chat-availability"}, (page,), T0)
    incident_id = service.record(notification)
    assert incident_id is not None
    service.annotate(_failover(T0 + 30).annotation())
    service.annotate(_failback(T0 + 400).annotation())
    service.annotate(Mitigation(T0 - 7200, "primary", "backup", "failover", "breaker", "failover long ago")
                     .annotation())
    clock.now = T0 + 600
    timeline = service.timeline(incident_id)
    mitigations = [e for e in timeline if e.kind == "mitigation"]
    assert [e.at for e in mitigations] == [T0 + 30, T0 + 400]
    assert mitigations[0].data["source"] == "genai-sre" and "failover primary -> backup" in mitigations[0].text
    text = render_postmortem(service, incident_id)
    resolution = text.split("## Resolution")[1].split("## Action items")[0]
    assert "2027-01-15 08:00:30 UTC automated mitigation (genai-sre): failover primary -> backup" in resolution
    assert "2027-01-15 08:06:40 UTC automated mitigation (genai-sre): failback primary" in resolution
    assert "action=" not in resolution  # the labels are data, not prose
    assert "MITIGATED: mitigation:" in text.split("## Timeline")[1]
    service.store.close()


@pytest.mark.integration
def test_get_annotations_filters_by_kind_and_time_with_the_read_token(tmp_path: Path) -> None:
    async def main_() -> None:
        base, runner, service, _ = await serve(tmp_path)
        try:
            service.annotate(_failover(T0).annotation())
            service.annotate(_failback(T0 + 60).annotation())
            assert (await call("POST", f"{base}/admin/annotations", WRITE,
                               {"kind": "deploy", "at": T0 + 10, "labels": {"model": "m", "version": "2"}}))[0] == 201
            status, body = await call("GET", f"{base}/admin/annotations?kind=mitigation", READ)
            assert status == 200 and [a["labels"]["action"] for a in body["annotations"]] == ["failover", "failback"]
            assert body["annotations"][0]["at"] == T0 and "failover" in body["annotations"][0]["text"]
            status, body = await call("GET", f"{base}/admin/annotations?since={T0 + 5}&limit=1", READ)
            assert status == 200 and [a["kind"] for a in body["annotations"]] == ["mitigation"] and body["truncated"]
            assert (await call("GET", f"{base}/admin/annotations", None))[0] == 401
            assert (await call("GET", f"{base}/admin/annotations?since=yesterday", READ))[0] == 400
            assert (await call("GET", f"{base}/admin/annotations?limit=0", READ))[0] == 400
        finally:
            await runner.cleanup()

    asyncio.run(main_())


def test_annotate_list_and_slo_status_show_the_fail_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path)]
    service = IncidentService(open_store("", tmp_path))
    service.annotate(_failover(T0).annotation())
    service.store.close()
    assert main(["annotate", "deploy", "--model", "gpt-x", "--version", "7", "--at", str(T0 + 1), *d]) == 0
    capsys.readouterr()
    assert main(["annotate", "list", "--kind", "mitigation", *d]) == 0
    out = capsys.readouterr().out
    assert "mitigation" in out and "failover primary -> backup" in out and "deploy" not in out
    assert main(["annotate", "list", "--json", *d]) == 0
    listed = json.loads(capsys.readouterr().out)["annotations"]
    assert [a["kind"] for a in listed] == ["mitigation", "deploy"]

    slos = Path(__file__).resolve().parents[2] / "configs" / "slos.yaml"
    assert main(["slo", "status", "--slos", str(slos), *d]) == 0  # no snapshot yet: says so, not an error
    from genai_sre.slo.engine import SLOEngine
    from genai_sre.slo.spec import load_slos
    from genai_sre.slo.store import SLOStore

    store = SLOStore(tmp_path / "slo.db")
    SLOEngine(load_slos(slos), store=store).snapshot()
    store.close()
    up = {"primary": {"fallback": "backup", "active": True, "reasons": ["breaker"], "since": T0,
                      "workers_failed_over": 2}}
    write_state(tmp_path, up)
    capsys.readouterr()
    assert main(["slo", "status", "--slos", str(slos), *d]) == 0
    out = capsys.readouterr().out
    assert "primary: FAILED OVER to backup since 2027-01-15 08:00:00 UTC (reason: breaker)" in out
    write_state(tmp_path, {**up, "primary": {**up["primary"], "active": False}}, running=False)
    assert main(["slo", "status", "--slos", str(slos), "--json", *d]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["failover"]["running"] is False and doc["failover"]["upstreams"]["primary"]["active"] is False
    assert oct((tmp_path / "failover.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("upstreams", "message"),
    [
        ("  - {name: a, url: 'http://a', fallback: {upstream: b}}\n", r"fallback.upstream 'b' is not a configured"),
        ("  - {name: a, url: 'http://a', fallback: {upstream: a}}\n", r"cannot be the upstream itself"),
        (
            "  - {name: a, url: 'http://a', fallback: {upstream: b}}\n"
            "  - {name: b, url: 'http://b', fallback: {upstream: c}}\n"
            "  - {name: c, url: 'http://c', fallback: {upstream: a}}\n",
            r"upstream fallbacks form a cycle: a -> b -> c -> a",
        ),
        ("  - {name: a, url: 'http://a', fallback: {upstream: b, trip_after_failures: 0}}\n  - {name: b, url: "
         "'http://b'}\n", r"upstreams\[0\].fallback.trip_after_failures"),
    ],
)
def test_fallbacks_name_known_upstreams_and_never_loop(tmp_path: Path, upstreams: str, message: str) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text("slo: {file: null}\nalerting: {file: null}\nupstreams:\n" + upstreams)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})
    assert main(["check-config", "--config", str(path)]) == 2


def test_check_config_describes_each_fail_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "slos.yaml").write_text(
        "version: genai-sre/slos/v1\nslos:\n"
        "  - {name: primary-ok, objective: 99, sli: {kind: availability}, filters: {upstreams: [primary]}}\n"
        "  - {name: all-ok, objective: 99, sli: {kind: availability}}\n"
    )
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "slo: {file: slos.yaml}\nalerting: {file: null}\nupstreams:\n"
        "  - {name: primary, url: 'http://a', fallback: {upstream: backup, trip_after_failures: 4}}\n"
        "  - {name: chain, url: 'http://c', fallback: {upstream: backup, on_slo_page: false}}\n"
        "  - {name: backup, url: 'http://b'}\n"
    )
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fail-over primary -> backup (breaker after 4 consecutive failures; SLO pages: primary-ok)" in out
    assert "fail-over chain -> backup (breaker after 5 consecutive failures; SLO pages off)" in out


def test_the_demo_view_shows_the_state_who_answers_and_the_latest_action() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from genai_sre.config import FallbackConfig, UpstreamConfig
    from genai_sre.demo.recorder import DemoRecorder
    from genai_sre.demo.view import failover_table
    from genai_sre.healing.controller import FailoverController
    from genai_sre.proxy.failover import FailoverEvent

    ups = (UpstreamConfig("mock", "http://a", fallback=FallbackConfig(upstream="backup")),
           UpstreamConfig("backup", "http://b"))
    controller = FailoverController(ups, clock=lambda: T0)
    assert failover_table(SimpleNamespace(failover=None), DemoRecorder()) is None
    controller.on_worker_event("local", FailoverEvent("mock", "backup", "failover", "breaker", T0, "10 failures"))
    console = Console(record=True, width=160)
    table = failover_table(SimpleNamespace(failover=controller), DemoRecorder())
    assert table is not None
    console.print(table)
    text = console.export_text()
    assert "FAILED OVER to backup" in text and "breaker" in text and "failover" in text
