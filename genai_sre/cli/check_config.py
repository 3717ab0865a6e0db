"""`genai-sre check-config`: load and validate a config file and everything it names."""

from __future__ import annotations

import argparse

from genai_sre.cli.serve import add_config_flags
from genai_sre.config import load_config

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-config", help="validate a config file, its SLO/alerting files and its plugins")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genai_sre.app import build_detector_slots
    from genai_sre.preflight import check_findings, idle_notes
    from genai_sre.telemetry.metrics import Metrics
    from genai_sre.wiring import check_files

    config = load_config(args.config, upstream=args.upstream, host=args.host, port=args.port)
    if not config.upstreams:
        print("genai-sre: error: no upstream configured (add `upstreams:` or pass --upstream URL)")
        return 2
    check_findings(config)
    slots = build_detector_slots(config, Metrics(), lambda: 0.0)
    notes = check_files(config)
    names = ", ".join(s.name for s in slots) or "none"
    print(
        f"config OK: {len(config.upstreams)} upstream(s), {len(slots)} detector(s): {names}"
        + "".join(f"; {n}" for n in notes)
    )
    for note in idle_notes(config):
        print(f"note: {note}")
    return 0
