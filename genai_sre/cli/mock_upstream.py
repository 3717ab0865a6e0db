"""`genai-sre mock-upstream`: run the simulated LLM."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mock-upstream", help="run a simulated OpenAI-compatible LLM driven by a scenario file")
    p.add_argument("--scenario", help="scenario YAML (configs/scenarios/*.yaml); default: one healthy phase")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--phase", help="pin one phase of the scenario")
    p.add_argument("--speed", type=float, default=1.0, help="divide every delay by this factor")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from genai_sre.mock.scenario import Scenario, load_scenario
    from genai_sre.mock.server import MockUpstream

    scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    mock = MockUpstream(scenario, speed=args.speed)
    if args.phase:
        if scenario.phase_named(args.phase) is None:
            print(f"genai-sre: error: scenario {scenario.name!r} has no phase {args.phase!r}")
            return 2
        mock.pinned = args.phase
    print(f"mock upstream ({scenario.name}) on http://{args.host}:{args.port}/v1", flush=True)
    web.run_app(mock.app(), host=args.host, port=args.port, print=None, access_log=None)
    return 0
