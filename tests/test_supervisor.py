"""`genai-sre serve` as processes: nothing the agent does (dying, hanging, a locked database) stalls forwarding."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.harness import LoopThread, start_app
from tests.security.upstreams import Seen, recording_app
from tests.sidecar_process import SidecarProcess, sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def upstream() -> Iterator[str]:
    lt = LoopThread()
    runner, port = lt.call(start_app(recording_app(Seen())))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        lt.call(runner.cleanup())
        lt.stop()


def _roles(sc: SidecarProcess) -> dict[str, list[psutil.Process]]:
    out: dict[str, list[psutil.Process]] = {"agent": [], "proxy": [], "other": []}
    for p in sc.processes()[1:]:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:  # gone, or a zombie the supervisor has not reaped yet
            continue
        role = "agent" if "--role agent" in cmd else "proxy" if "--role proxy" in cmd else "other"
        out[role].append(p)
    return out


def _ready(sc: SidecarProcess) -> bool:
    try:
        return httpx.get(sc.admin_url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:  # the admin port's connections wait in the backlog while the agent restarts
        return False


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class Traffic:
    """Steady requests from a background thread; every failure and every latency is kept."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url = url
        self.every_s = every_s
        self.latencies: list[tuple[float, float]] = []  # (when, seconds)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = client.post(self.url + "/v1/chat/completions", json={"model": "gpt-4o"})
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code} {r.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append((t0, time.monotonic() - t0))
                time.sleep(self.every_s)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def worst(self, since: float, until: float) -> float:
        return max((d for t, d in self.latencies if since <= t <= until), default=0.0)


def test_a_killed_or_hung_agent_is_replaced_while_forwarding_goes_on(tmp_path: Path, upstream: str) -> None:
    with sidecar(tmp_path, upstream) as sc, Traffic(sc.proxy_url) as traffic:
        time.sleep(1.0)
        (agent,) = _roles(sc)["agent"]
        first_pid = agent.pid
        t_kill = time.monotonic()
        os.kill(first_pid, signal.SIGKILL)
        assert _wait(lambda: [p.pid for p in _roles(sc)["agent"]] not in ([], [first_pid]), 20)
        assert _wait(lambda: _ready(sc), 60)
        (agent,) = _roles(sc)["agent"]
        second_pid = agent.pid
        time.sleep(1.0)
        t_stop = time.monotonic()
        os.kill(second_pid, signal.SIGSTOP)  # hung: no heartbeat; the supervisor must notice and replace it
        time.sleep(10.0)
        t_resumed = time.monotonic()
        assert _wait(lambda: [p.pid for p in _roles(sc)["agent"]] not in ([], [second_pid]), 20)
        assert not psutil.pid_exists(second_pid) or psutil.Process(second_pid).status() == psutil.STATUS_ZOMBIE
        # scoring resumes: the new agent receives and processes captures of new requests
        assert _wait(lambda: sc.metric("genai_sre_pipeline_processing_seconds_count") > 0, 30)
        time.sleep(1.0)
    assert traffic.failures == []
    before = traffic.worst(0, t_kill)
    during = max(traffic.worst(t_kill, t_kill + 5), traffic.worst(t_stop, t_resumed))
    assert during < max(1.0, 10 * before), f"forwarding slowed while the agent was down: {during:.3f} s"
    assert "replacing it" in sc.log


def test_counters_are_exact_across_workers_and_an_agent_restart(tmp_path: Path, upstream: str) -> None:
    with sidecar(tmp_path, upstream, workers=2) as sc:
        assert len(_roles(sc)["proxy"]) == 2
        n = 0
        with httpx.Client() as client:
            for _ in range(60):  # new connections, so both workers get some
                with httpx.Client() as c:
                    assert c.post(sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"}).status_code == 200
                n += 1
            (agent,) = _roles(sc)["agent"]
            os.kill(agent.pid, signal.SIGKILL)
            for _ in range(40):
                assert client.post(sc.proxy_url + "/v1/chat/completions", json={"model": "gpt-4o"}).status_code == 200
                n += 1
        assert _wait(lambda: _ready(sc), 60)
        assert sc.total("genai_sre_requests_total", status_class="2xx") == n
        assert _wait(lambda: sc.total("genai_sre_requests_total", status_class="2xx") == n, 5)


def test_a_locked_database_never_stalls_forwarding(tmp_path: Path, upstream: str) -> None:
    (tmp_path / "slos.yaml").write_text(
        "version: genai-sre/slos/v1\nservice: t\nslos:\n"
        "  - {name: avail, objective: 99, period: 30d, sli: {kind: availability}}\n"
    )
    (tmp_path / "alerting.yaml").write_text(
        "version: genai-sre/alerting/v1\nroute: {receiver: log}\nreceivers: [{name: log, type: stdout}]\n"
    )
    extra = (
        f"slo: {{file: '{tmp_path / 'slos.yaml'}', snapshot_interval_s: 0.5, evaluation_interval_s: 0.5}}\n"
        f"alerting: {{file: '{tmp_path / 'alerting.yaml'}'}}\n"
    )
    env = {"GENAI_SRE_ADMIN_TOKEN": "t0ken"}
    with sidecar(tmp_path, upstream, extra, env=env) as sc, Traffic(sc.proxy_url, every_s=0.02) as traffic:
        time.sleep(1.0)
        holders = []
        for name in ("incidents.db", "slo.db", "evidence.db"):
            path = sc.data_dir / name
            assert _wait(path.exists, 10), name
            holder = subprocess.Popen(
                [sys.executable, "-c",
                 "import sqlite3, sys, time\n"
                 "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                 "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(6)\n", str(path)],
                stdout=subprocess.PIPE, text=True,
            )
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            holders.append(holder)
        t_locked = time.monotonic()
        auth = {"Authorization": "Bearer t0ken"}
        r = httpx.post(sc.admin_url + "/admin/annotations", json={"kind": "deploy", "text": "v2"}, headers=auth,
                       timeout=10)
        assert r.status_code in (201, 503), r.text
        time.sleep(3.0)  # SLO evaluations and snapshots run meanwhile
        t_end = time.monotonic()
        for h in holders:
            h.wait(10)
        r = httpx.post(sc.admin_url + "/admin/annotations", json={"kind": "deploy", "text": "v3"}, headers=auth,
                       timeout=10)
        assert r.status_code == 201, r.text
    assert traffic.failures == []
    assert traffic.worst(t_locked, t_end) < 1.0, "a request waited on a locked database"
    with sqlite3.connect(sc.data_dir / "incidents.db") as db:
        texts = [t for (t,) in db.execute("SELECT text FROM annotations")]
    assert "v3" in texts


def test_process_roles_are_named_on_the_command_line(tmp_path: Path, upstream: str) -> None:
    extra = (
        "slo: {file: null}\nalerting: {file: null}\n"
        "detectors: [{name: hallucination, type: hallucination, options: {executor: process}}]\n"
    )
    with sidecar(tmp_path, upstream, extra) as sc:
        httpx.post(sc.proxy_url + "/v1/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "system", "content": "The sky is blue in daylight, always."},
                                            {"role": "user", "content": "What colour is the sky?"}]})
        assert _wait(lambda: len(_roles(sc)["other"]) >= 1, 60), "the detector's process pool never started"
        roles = _roles(sc)
        assert len(roles["agent"]) == 1 and len(roles["proxy"]) == 1
        for p in roles["other"]:  # the agent's helper processes carry neither role's word
            cmd = " ".join(p.cmdline())  # fmt: skip
            assert "agent" not in cmd and "proxy" not in cmd, cmd


def test_availability_events_count_once_across_an_agent_restart(tmp_path: Path, upstream: str) -> None:
    (tmp_path / "slos.yaml").write_text(
        "version: genai-sre/slos/v1\nservice: t\nslos:\n"
        "  - {name: avail, objective: 99, period: 30d, sli: {kind: availability}}\n"
    )
    extra = (
        f"slo: {{file: '{tmp_path / 'slos.yaml'}', snapshot_interval_s: 0.5, evaluation_interval_s: 0.5}}\n"
        "alerting: {file: null}\n"
    )
    window = 'genai_sre_slo_window_events{slo="avail",window="5m"}'
    with sidecar(tmp_path, upstream, extra) as sc, httpx.Client() as client:
        for _ in range(30):
            assert client.post(sc.proxy_url + "/v1/chat/completions", json={"model": "m"}).status_code == 200
        assert _wait(lambda: sc.metric(window) == 30, 10)
        time.sleep(1.5)  # a snapshot holds the windows and what they accounted for
        (agent,) = _roles(sc)["agent"]
        os.kill(agent.pid, signal.SIGKILL)
        for _ in range(20):
            assert client.post(sc.proxy_url + "/v1/chat/completions", json={"model": "m"}).status_code == 200
        assert _wait(lambda: _ready(sc), 60)
        assert _wait(lambda: sc.metric(window) >= 50, 10)
        time.sleep(1.0)
        assert sc.metric(window) == 50  # every request once: none lost, none counted twice
