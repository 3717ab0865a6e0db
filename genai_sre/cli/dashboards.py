"""`genai-sre dashboards`: write the Grafana dashboards as JSON files for provisioning."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboards",
        help="generate the Grafana dashboards (SLO overview, LLM traffic, quality, fairness)",
        description="Write the dashboards as JSON for Grafana file provisioning (deploy/grafana/dashboards).",
    )
    p.add_argument("--out", required=True, help="folder to write the *.json files into (created if missing)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file in --out differs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genai_sre.dashboards import DASHBOARDS, render, write

    if args.check:
        stale = []
        for name in DASHBOARDS:
            path = Path(args.out) / name
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != render(name):
                stale.append(str(path))
        for path_s in stale:
            print(f"out of date: {path_s}")
        return 1 if stale else 0
    for path in write(args.out):
        print(path)
    return 0
