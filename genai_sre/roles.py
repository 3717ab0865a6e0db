"""How each child process of `genai-sre serve` runs: the proxy worker and the agent.

The supervisor hands each child its sockets as inherited file descriptors
(the proxy port, the admin port, the channel's listening socket) and a pipe to
write heartbeats to. A child writes a heartbeat from its event loop, so a
blocked loop stops the beats and the supervisor replaces the child. A child
whose supervisor is gone exits by itself. Children ignore SIGINT (a Ctrl-C in a
terminal reaches the whole process group): the supervisor orders the shutdown
with SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket

from genai_sre.config import Config

__all__ = ["Heartbeat", "run_agent", "run_proxy"]

logger = logging.getLogger(__name__)

AGENT_BEAT_S = 0.5
AGENT_NICE = 10


class Heartbeat:
    """Write one byte to the supervisor's pipe; exit when the supervisor is gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.parent = os.getppid()
        os.set_blocking(fd, False)

    def __call__(self) -> None:
        if os.getppid() != self.parent:
            logger.error("the supervisor is gone; exiting")
            os._exit(3)
        try:
            os.write(self.fd, b".")
        except BlockingIOError:
            pass  # the supervisor is slow to read: a beat is a beat
        except BrokenPipeError:
            logger.error("the supervisor closed the heartbeat pipe; exiting")
            os._exit(3)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return stop


async def run_proxy(config: Config, slot: int, listen_fd: int, channel_path: str, heartbeat_fd: int) -> None:
    """A proxy worker: forward on the inherited socket, ship captures and counters to the agent."""
    from genai_sre.proxy.channel import ChannelClient
    from genai_sre.proxy.stats import ProxyStats
    from genai_sre.proxy.worker import build_proxy, worker_id

    stop = _stop_event()
    stats = ProxyStats()
    channel = ChannelClient(channel_path, worker_id(slot), stats)
    channel.start()
    worker = build_proxy(config, channel, stats)
    channel.on_control = worker.control
    channel.on_connected = worker.forwarder.failover.replay
    worker.heartbeat = Heartbeat(heartbeat_fd)
    sock = socket.socket(fileno=listen_fd)
    gc.freeze()
    await worker.run_until_signal(stop, sock)
    await channel.aclose()


async def run_agent(config: Config, admin_fd: int, channel_fd: int, heartbeat_fd: int) -> None:
    """The agent: scoring, SLOs, alerting, incidents, telemetry and the admin port."""
    from genai_sre.agent import build_agent
    from genai_sre.wiring import wire

    stop = _stop_event()
    # Below the proxy workers: where they share a CPU (a 1-CPU pod), forwarding comes first.
    os.nice(AGENT_NICE)
    beat = Heartbeat(heartbeat_fd)  # the first beat comes once loaded (the supervisor allows for startup)

    async def beats() -> None:
        while True:
            beat()
            await asyncio.sleep(AGENT_BEAT_S)

    agent = build_agent(config)
    await wire(agent)
    agent.spawn(beats(), "genai-sre-heartbeat")
    await agent.start(admin_sock=socket.socket(fileno=admin_fd), channel_sock=socket.socket(fileno=channel_fd))
    gc.freeze()
    await stop.wait()
    await agent.stop()
