"""The worker channel both ways over a real Unix socket: control to workers, fail-over events to the agent."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path
from typing import Any

from genai_sre.proxy.channel import ChannelClient, ChannelServer, Intake
from genai_sre.proxy.failover import FailoverEvent
from genai_sre.proxy.stats import ProxyStats


async def _until(check: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_control_reaches_workers_on_connect_and_on_change_and_events_survive_an_agent_restart() -> None:
    async def main() -> None:
        path = str(Path(tempfile.mkdtemp(prefix="genai-sre-chan-")) / "agent.sock")
        events: list[tuple[str, FailoverEvent]] = []
        wanted: dict[str, str] = {"primary": "slo:grounded"}

        def start_agent() -> tuple[ChannelServer, socket.socket]:
            intake = Intake(on_capture=lambda c: True, on_stats=lambda *a: None,
                            on_event=lambda w, e: events.append((w, e)))
            intake.greeting = lambda: [("failover", dict(wanted))]
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            sock.listen()
            return ChannelServer(intake), sock

        server, sock = start_agent()
        await server.start(sock)
        heard: list[tuple[Any, ...]] = []
        open_breakers: list[FailoverEvent] = []
        client = ChannelClient(path, "0-1", ProxyStats())
        client.on_control = heard.append
        client.on_connected = lambda: list(open_breakers)
        client.start()
        # a worker that connects hears the current state at once
        await _until(lambda: heard == [("failover", {"primary": "slo:grounded"})])
        server.broadcast(("failover", {}))
        await _until(lambda: len(heard) == 2 and heard[1] == ("failover", {}))

        trip = FailoverEvent("primary", "backup", "failover", "breaker", 1.0, "5 failures")
        assert client.send_event(trip)
        await _until(lambda: events == [("0-1", trip)])

        # the agent goes away: events wait (bounded) and the open breakers are told again to the new agent
        await server.aclose()
        for transport in list(server.workers):
            transport.close()
        sock.close()
        Path(path).unlink()
        await _until(lambda: not client.connected)
        back = FailoverEvent("primary", "backup", "failback", "breaker", 2.0, "probes good")
        assert not client.send_event(back)
        open_breakers.append(FailoverEvent("primary", "backup", "failover", "breaker", 3.0, "open", True))
        server, sock = start_agent()
        await server.start(sock)
        await _until(lambda: len(events) == 3)
        assert [e for _, e in events[1:]] == [back, open_breakers[0]]
        await client.aclose()
        await server.aclose()

    asyncio.run(main())
