"""`genai-sre demo`: the end-to-end loop on loopback, no keys, no network."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the embedded end-to-end demo (simulated upstream, no keys, no network)")
    p.add_argument("--config", help="demo settings (default: the bundled demo.yaml)")
    p.add_argument("--duration", type=float, help="seconds of traffic (default: the config's duration_s)")
    p.add_argument("--headless", action="store_true", help="no live view; print the summary only")
    p.add_argument("--data-dir", help="where the demo keeps its SQLite files (default: .genai-sre/demo-<time>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from rich.console import Console

    from genai_sre.bundled import bundled
    from genai_sre.demo.config import load_demo_config
    from genai_sre.demo.driver import run_demo
    from genai_sre.demo.view import LiveView, render_summary
    from genai_sre.logs import setup_logging
    from genai_sre.storage.files import private_process

    setup_logging("WARNING", "text")
    private_process()
    logging.getLogger("genai_sre").setLevel(logging.ERROR)
    cfg = load_demo_config(args.config or bundled("demo.yaml"))
    duration = args.duration or cfg.duration_s
    data_dir = Path(args.data_dir or f".genai-sre/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    console = Console()
    view = None if args.headless else LiveView(console)
    if args.headless:
        console.print(f"genai-sre demo: {duration:.0f} s of traffic through the sidecar (headless)")
    result = asyncio.run(run_demo(cfg, duration, data_dir, view))
    render_summary(console, result)
    return 0 if result.recorder.totals["exchanges"] > 0 else 1
