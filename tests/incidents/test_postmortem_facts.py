"""A scripted outage through the whole sidecar: the page goes out, and the draft's facts are the alert's.

The mock upstream is healthy, then fails most requests (503s and cut streams), then recovers, on a
clock the test moves. The SLO engine pages; the incident opens and resolves; the postmortem draft must
quote the burn rate the page fired with, a peak no lower than it, the budget from the same engine, the
exact number of failed requests, and only exchanges the SLO counted as bad, each with its status. The
same draft comes out of `genai-sre postmortem` once the sidecar has stopped. With a snapshot store that
fails on every write, the page still goes out.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from genai_sre.app import Sidecar
from genai_sre.cli import main
from genai_sre.config import SLOSettings
from genai_sre.incidents.postmortem import render_postmortem
from genai_sre.mock.scenario import Latency, Phase, Scenario
from genai_sre.mock.server import MockUpstream
from genai_sre.slo.store import SLOStore
from genai_sre.wiring import wire
from tests import harness
from tests.harness import LoopThread, start_app

pytestmark = pytest.mark.integration

T0 = 1_900_000_000.0
FAST = Latency(median=0.002, p99=0.004)
SCENARIO = Scenario(
    phases=(
        Phase(name="healthy", ttft_s=FAST, tokens_per_s=5000),
        Phase(name="outage", ttft_s=FAST, tokens_per_s=5000, error_rate=0.7, error_status=503, cut_rate=1.0),
    )
)
SLOS = """
version: genai-sre/slos/v1
service: scripted
min_events: 10
alert_windows:
  page:
    - {budget_percent: 5, long: 2m, short: 20s}
  ticket:
    - {budget_percent: 10, long: 4m, short: 40s}
self_monitoring: {enabled: false}
slos:
  - name: chat-availability
    objective: 99.5
    period: 1h
    sli: {kind: availability}
"""
ALERTING = """
version: genai-sre/alerting/v1
route:
  receiver: alerts-file
  group_by: [alertname, slo]
  group_wait_s: 0
  group_interval_s: 0.1
  repeat_interval_s: 3600
  routes:
    - {matchers: ['severity="page"'], receiver: incidents, continue: true}
    - receiver: alerts-file
receivers:
  - {name: alerts-file, type: file, options: {path: alerts.jsonl}}
  - {name: incidents, type: incidents}
silences_file: silences.json
"""


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _send(client: httpx.Client, url: str, i: int, failed: set[str]) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "system", "content": "Refunds within 30 days."}, {"role": "user", "content": f"q{i}"}],
    }
    if i % 2:
        body["stream"] = True
        with client.stream("POST", url, json=body) as r:
            rid = r.headers["x-genai-sre-request-id"]
            try:
                text = "".join(r.iter_text())
            except httpx.HTTPError:
                failed.add(rid)  # cut by the upstream, cut for the client
                return
            if r.status_code >= 500 or "[DONE]" not in text:
                failed.add(rid)
        return
    r = client.post(url, json=body)
    if r.status_code >= 500:
        failed.add(r.headers["x-genai-sre-request-id"])


def _section(text: str, name: str) -> str:
    return text.split(f"\n## {name}\n")[1].split("\n## ")[0]


def _burn(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


@pytest.mark.parametrize("snapshots", ["working", "failing"])
def test_scripted_outage_pages_and_the_draft_quotes_the_alert(
    tmp_path: Path, snapshots: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if snapshots == "failing":
        def refuse(self: SLOStore, state: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(SLOStore, "save", refuse)
    (tmp_path / "slos.yaml").write_text(SLOS)
    (tmp_path / "alerting.yaml").write_text(ALERTING)
    data = tmp_path / "data"
    clock = Clock()
    # The proxy stamps a request's start with time.time() rather than the sidecar's injected wall clock.
    monkeypatch.setattr("genai_sre.proxy.connection.time", SimpleNamespace(time=clock, monotonic=time.monotonic))
    mock = MockUpstream(SCENARIO)
    mock.pinned = "healthy"
    lt = LoopThread()
    runner, port = lt.call(start_app(mock.app()))
    cfg = harness.test_config(f"http://127.0.0.1:{port}")
    cfg = replace(
        cfg,
        base_dir=str(tmp_path),
        slo=SLOSettings(file="slos.yaml", evaluation_interval_s=3600, snapshot_interval_s=1),
        alerting=replace(cfg.alerting, file="alerting.yaml"),
        storage=replace(cfg.storage, data_dir=str(data), store_samples=True, sample_rate=0.0),
    )

    async def make() -> Sidecar:
        sc = Sidecar(cfg, wall=clock)
        await wire(sc.agent)
        await sc.start()
        return sc

    sidecar = lt.call(make())
    failed: set[str] = set()
    url = f"http://127.0.0.1:{sidecar.proxy_port}/v1/chat/completions"

    async def settle() -> None:
        await sidecar.pipeline.wait_idle()
        await sidecar.evaluate_now()
        router = sidecar.alerting.router
        await router.flush()
        await router.drain()

    try:
        with httpx.Client(timeout=10) as client:
            for phase, batches in (("healthy", 12), ("outage", 6), ("healthy", 15)):
                mock.pinned = phase
                for _ in range(batches):
                    for i in range(10):
                        _send(client, url, i, failed)
                    lt.call(settle())
                    clock.t += 10
        service = sidecar.alerting.service
        (incident,) = service.list_incidents()
        assert incident.status == "resolved"  # paged, then every alert of the incident resolved
        pages = [a for a in sidecar.recent_alerts if a.labels["severity"] == "page" and a.status == "firing"]
        assert len(pages) == 1
        page = pages[0].annotations
        sent = [json.loads(line) for line in (data / "alerts.jsonl").read_text().splitlines()]
        assert any(a["labels"]["severity"] == "page" and a["status"] == "firing" for n in sent for a in n["alerts"])
        if snapshots == "failing":
            failures = sidecar.registry.get_sample_value("genai_sre_slo_snapshot_failures_total")
            assert failures is not None and failures >= 30  # one per evaluation, each retried
        sidecar.evidence.flush()
        live = render_postmortem(service, incident.id, sidecar.postmortem_evidence)
    finally:
        lt.call(sidecar.stop(grace_s=0.3))
        lt.call(runner.cleanup())
        lt.stop()

    assert 20 <= len(failed) <= 50  # 60 requests at 70 % errors (the rest of the streams are cut)
    detection = _section(live, "Detection")
    impact = _section(live, "Impact")
    burn = float(page["burn_rate"])
    assert burn > 1.5  # the page's own threshold
    assert f"- Burn rate at page time: {_burn(burn)} over the 20s window; error budget remaining then: " in detection
    assert f"burn rate at page time {_burn(burn)}, peak " in impact
    peak = re.search(r"peak ([\d,.]+)x \(over 20s windows\)", impact)
    assert peak is not None and float(peak.group(1).replace(",", "")) >= round(burn, 1)
    affected = re.search(r"requests affected ([\d,]+) of ([\d,]+)", impact)
    assert affected is not None and int(affected.group(1).replace(",", "")) == len(failed)
    for section in (impact, detection):
        assert not re.search(r"\d\.\d{3,}", section), section  # rounded for people
    assert "0.00x" not in impact + detection  # (the timeline may: an alert resolves at a burn rate of 0)
    samples = _section(live, "Supporting information").split("Redacted samples of the bad events of "
                                                           "`chat-availability`:")[1]
    listed = re.findall(r"^- `([0-9a-f]+)` at .* (status=\S+(?: \([a-z_]+\))?) model=", samples, re.MULTILINE)
    assert len(listed) == 5
    for rid, status in listed:
        assert rid in failed, rid  # a request the client saw fail, which the SLO counted as bad
        assert status == "status=503" or status.startswith("status=error ("), status
    assert "status=503 x" in impact and "status=error (" in impact

    if snapshots == "working":  # the same facts from the command line, after the sidecar stopped
        out = tmp_path / "pm.md"
        args = ["postmortem", incident.id, "--data-dir", str(data), "--slos", str(tmp_path / "slos.yaml")]
        assert main([*args, "--out", str(out)]) == 0
        offline = out.read_text()
        assert _section(offline, "Impact") == impact
        assert _section(offline, "Detection") == detection
