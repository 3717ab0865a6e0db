"""`genai-sre serve`: one supervisor, N proxy workers and one agent, each in its own process.

The supervisor binds every socket itself (the proxy port, once per worker
with `SO_REUSEPORT`; the admin port; the agent's channel socket in a private
0700 directory) and hands them to its children as inherited descriptors. A
child that is replaced gets the same sockets, so connections arriving
meanwhile wait in the kernel's backlog instead of being refused.

- **Proxy workers** (`genai-sre serve ... --role proxy`) forward traffic. They
  send the agent captures and counters over the channel, which never makes
  them wait.
- **The agent** (`genai-sre serve ... --role agent`) scores, evaluates SLOs,
  alerts, keeps incidents and serves the admin port.

Each child writes heartbeats from its event loop. A child that exits, or
stops beating for `HEARTBEAT_TIMEOUT_S` (after a startup allowance), is killed
and started again with exponential backoff; forwarding goes on while the agent
is replaced, and captures meanwhile are dropped and counted.

SIGTERM (or SIGINT) drains in order: workers turn unready and keep serving for
`proxy.drain_s`; then the supervisor closes its copies of the proxy sockets,
the workers stop listening and finish open requests within
`proxy.shutdown_grace_s` and flush their counters; last, the agent drains its
queue and writes its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genai_sre.config import Config
from genai_sre.errors import ListenError
from genai_sre.proxy.probes import probe_token
from genai_sre.session import session_id

__all__ = ["Supervisor"]

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_S = 5.0
STARTUP_TIMEOUT_S = 180.0
BACKOFF_MAX_S = 30.0
EX_CONFIG = 78  # a child's exit status for a configuration error (sysexits.h): restarting cannot help


def command_prefix() -> list[str]:
    """How to start `genai-sre` again: the console script next to this Python, else `python -m genai_sre`."""
    script = Path(sys.executable).with_name("genai-sre")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "genai_sre"]


@dataclass
class Child:
    role: str
    slot: int
    argv: list[str]
    fds: tuple[int, ...]
    proc: subprocess.Popen[bytes] | None = None
    beat_r: int = -1
    started: float = 0.0
    last_beat: float | None = None
    backoff: float = 0.5
    restarts: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.role if self.role == "agent" else f"proxy[{self.slot}]"


def _bind_tcp(host: str, port: int, what: str, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ListenError.of(what, host, port, exc) from None
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, config: Config, base_argv: Sequence[str], workers: int = 1) -> None:
        self.config = config
        self.base_argv = list(base_argv)
        self.workers = workers
        self.children: list[Child] = []
        self.stopping = False
        self.proxy_socks: list[socket.socket] = []
        self.proxy_port = config.proxy.port
        self.admin_port = config.admin.port
        self._runtime = Path(tempfile.mkdtemp(prefix="genai-sre-"))  # 0700: only our children reach the channel
        self._wakeup: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self.exit_code = 0

    def bind(self) -> None:
        """Bind every socket now, so a busy port fails before any child starts."""
        cfg = self.config
        first = _bind_tcp(cfg.proxy.host, cfg.proxy.port, "proxy port", reuse_port=self.workers > 1)
        self.proxy_port = first.getsockname()[1]
        self.proxy_socks = [first]
        for _ in range(1, self.workers):
            self.proxy_socks.append(_bind_tcp(cfg.proxy.host, self.proxy_port, "proxy port", reuse_port=True))
        self.admin_sock = _bind_tcp(cfg.admin.host, cfg.admin.port, "admin port", reuse_port=False)
        self.admin_port = self.admin_sock.getsockname()[1]
        self.channel_path = str(self._runtime / "agent.sock")
        self.channel_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.channel_sock.bind(self.channel_path)
        self.channel_sock.listen(64)
        self.channel_sock.set_inheritable(True)

    def _children(self) -> list[Child]:
        agent = Child(
            "agent",
            0,
            [*self.base_argv, "--role", "agent", "--admin-fd", str(self.admin_sock.fileno()),
             "--channel-fd", str(self.channel_sock.fileno())],
            (self.admin_sock.fileno(), self.channel_sock.fileno()),
        )
        workers = [
            Child(
                "proxy",
                i,
                [*self.base_argv, "--role", "proxy", "--slot", str(i), "--listen-fd", str(sock.fileno()),
                 "--channel", self.channel_path],
                (sock.fileno(),),
            )
            for i, sock in enumerate(self.proxy_socks)
        ]
        return [agent, *workers]

    def _spawn(self, child: Child) -> None:
        beat_r, beat_w = os.pipe()
        argv = [*child.argv, "--heartbeat-fd", str(beat_w)]
        child.proc = subprocess.Popen(argv, pass_fds=(*child.fds, beat_w), close_fds=True)
        os.close(beat_w)
        os.set_blocking(beat_r, False)
        child.beat_r = beat_r
        child.started = time.monotonic()
        child.last_beat = None
        loop = asyncio.get_running_loop()
        loop.add_reader(beat_r, self._on_beat, child)
        logger.info("started %s", child.name, extra={"pid": child.proc.pid})

    def _on_beat(self, child: Child) -> None:
        try:
            data = os.read(child.beat_r, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            child.last_beat = time.monotonic()
        else:  # the child closed its end: it exited
            self._close_pipe(child)
            if self._wakeup is not None:
                self._wakeup.set()

    def _close_pipe(self, child: Child) -> None:
        if child.beat_r >= 0:
            asyncio.get_running_loop().remove_reader(child.beat_r)
            os.close(child.beat_r)
            child.beat_r = -1

    def _check(self, child: Child, now: float) -> None:
        """Replace a child that exited or stopped beating."""
        proc = child.proc
        if proc is None:
            return
        code = proc.poll()
        if code is None:
            silent = now - (child.last_beat if child.last_beat is not None else child.started)
            limit = HEARTBEAT_TIMEOUT_S if child.last_beat is not None else STARTUP_TIMEOUT_S
            if silent <= limit:
                if child.last_beat is not None and now - child.started > 60:
                    child.backoff = 0.5  # healthy for a while: the next failure restarts quickly
                return
            logger.error("%s sent no heartbeat for %.1f s: replacing it", child.name, silent, extra={"pid": proc.pid})
            proc.kill()
            proc.wait()
        elif code == EX_CONFIG:
            logger.error("%s stopped on a configuration error (above): shutting down", child.name)
            self._close_pipe(child)
            child.proc = None
            self.exit_code = 2
            if self._stop is not None:
                self._stop.set()
            return
        else:
            logger.error("%s exited with %s: replacing it", child.name, code, extra={"pid": proc.pid})
        self._close_pipe(child)
        child.proc = None
        child.restarts += 1
        delay = child.backoff
        child.backoff = min(child.backoff * 2, BACKOFF_MAX_S)
        asyncio.get_running_loop().call_later(delay, self._respawn, child)

    def _respawn(self, child: Child) -> None:
        if not self.stopping and child.proc is None:
            self._spawn(child)

    async def run(self) -> int:
        """Start the children, supervise until SIGTERM/SIGINT, then shut down in order."""
        os.environ.setdefault("GENAI_SRE_PROBE_TOKEN", probe_token())  # one probe secret for every child
        session_id()  # one session: a replaced agent restores the state its predecessor saved
        loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self._wakeup = asyncio.Event()
        self.children = self._children()
        for child in self.children:
            self._spawn(child)
        logger.info(
            "genai-sre serving",
            extra={
                "proxy": f"http://{self.config.proxy.host}:{self.proxy_port}",
                "admin": f"http://{self.config.admin.host}:{self.admin_port}",
                "workers": self.workers,
                "upstreams": ",".join(f"{u.name}={u.url}" for u in self.config.upstreams),
            },
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_any(stop), 0.5)
            now = time.monotonic()
            for child in self.children:
                self._check(child, now)
            if os.getpid() == 1:
                self._reap_orphans()
        await self._shutdown()
        return self.exit_code

    def _reap_orphans(self) -> None:
        """As PID 1 in a container, orphans (a dead agent's helpers) become ours: reap them, but only them."""
        ours = {c.proc.pid for c in self.children if c.proc is not None}
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in ours:
                return  # nothing exited, or one of our children: `_check` reaps it through its Popen
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    async def _wait_any(self, stop: asyncio.Event) -> None:
        assert self._wakeup is not None
        self._wakeup.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wakeup.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _shutdown(self) -> None:
        self.stopping = True
        proxy = self.config.proxy
        logger.info("shutting down", extra={"drain_s": proxy.drain_s, "grace_s": proxy.shutdown_grace_s})
        workers = [c for c in self.children if c.role == "proxy" and c.proc is not None]
        agent = next(c for c in self.children if c.role == "agent")
        for c in workers:
            assert c.proc is not None
            c.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(proxy.drain_s)
        for sock in self.proxy_socks:  # our copies: once the workers close theirs, connections are refused
            sock.close()
        await self._wait_exit(workers, proxy.shutdown_grace_s + 5.0)
        if agent.proc is not None:
            agent.proc.send_signal(signal.SIGTERM)
            await self._wait_exit([agent], 30.0)
        for child in self.children:
            self._close_pipe(child)
        self.admin_sock.close()
        self.channel_sock.close()
        shutil.rmtree(self._runtime, ignore_errors=True)

    async def _wait_exit(self, children: list[Child], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for child in children:
            proc = child.proc
            if proc is None:
                continue
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                logger.error("%s did not stop in time: killing it", child.name, extra={"pid": proc.pid})
                proc.kill()
                proc.wait()
