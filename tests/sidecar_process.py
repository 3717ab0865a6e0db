"""`genai-sre serve` as a real process on loopback, with small local servers to point it at."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from genai_sre.proxy.worker import STATS_EVERY_S
from tests.servers import free_port


class SidecarProcess:
    def __init__(self, proc: subprocess.Popen[str], proxy_port: int, admin_port: int, data_dir: Path) -> None:
        self.proc = proc
        self.proxy_port = proxy_port
        self.admin_port = admin_port
        self.data_dir = data_dir
        self._stderr: list[str] = []
        assert proc.stderr is not None
        stderr = proc.stderr
        self._reader = threading.Thread(target=lambda: self._stderr.extend(stderr), daemon=True)
        self._reader.start()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def log(self) -> str:
        return "".join(self._stderr)

    def metrics(self) -> str:
        """`/metrics` once the proxy workers' counters of everything sent so far reached the agent."""
        time.sleep(2 * STATS_EVERY_S)
        return httpx.get(self.admin_url + "/metrics", timeout=10).text

    def metric(self, line_prefix: str) -> float:
        """The value of the first sample whose line starts with `line_prefix` (0 when absent)."""
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        want = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(w in line for w in want):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *(p for p in root.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE)]

    def peak_rss(self) -> int:
        """The highest resident set size any of the sidecar's processes reached (VmHWM), in bytes."""
        peak = 0
        for p in self.processes():
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
            except OSError:
                pass
        return peak

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        return int(self.proc.returncode)


@contextmanager
def sidecar(
    tmp_path: Path,
    upstream_url: str,
    extra: str = "",
    env: dict[str, str] | None = None,
    ready_timeout: float = 60.0,
    proxy: str = "",
    storage: str = "",
    workers: int = 1,
) -> Iterator[SidecarProcess]:
    """Start `genai-sre serve` with a minimal config (no SLO, alerting or detectors unless `extra` adds them).

    The file is laid over the bundled config, so it says `detectors: []` unless `extra` names detectors.
    `proxy`, `storage`: more keys of those sections, as YAML flow items (`"header_timeout_s: 1"`)."""
    port, admin = free_port(), free_port()
    data = tmp_path / "data"
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(
        f"upstreams: [{{name: up, url: '{upstream_url}', read_timeout_s: 10, connect_timeout_s: 2}}]\n"
        f"proxy: {{port: {port}, shutdown_grace_s: 2, drain_s: 0{', ' + proxy if proxy else ''}}}\n"
        f"admin: {{port: {admin}}}\n"
        f"storage: {{data_dir: '{data}'{', ' + storage if storage else ''}}}\n"
        + (extra or "slo: {file: null}\nalerting: {file: null}\n")
        + ("" if "detectors:" in extra else "detectors: []\n")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg), "--workers", str(workers)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    sc = SidecarProcess(proc, port, admin, data)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"genai-sre serve exited ({proc.returncode}): {sc.log}")
            try:
                if httpx.get(sc.admin_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"genai-sre serve never became ready: {sc.log}")
            time.sleep(0.1)
        yield sc
    finally:
        sc.stop()


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the proxy port; return the first response (by its Content-Length) or all until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                head, sep, body = out.partition(b"\r\n\r\n")
                if sep and not head.startswith(b"HTTP/1.1 100"):
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length" and len(body) >= int(value):
                            return out
        except (TimeoutError, ConnectionResetError):
            pass
        return out


class Listener:
    """A TCP listener on loopback that counts connections: a host the sidecar must never contact."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def run_in_thread(target: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


async def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()
