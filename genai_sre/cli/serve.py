"""`genai-sre serve`: run the sidecar."""

from __future__ import annotations

import argparse
import asyncio
import os

from genai_sre.config import load_config
from genai_sre.logs import setup_logging
from genai_sre.storage.files import private_process

__all__ = ["register"]


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="config file (env GENAI_SRE_CONFIG)")
    p.add_argument("--upstream", help="upstream URL (overrides the first configured upstream)")
    p.add_argument("--host", help="proxy listen address")
    p.add_argument("--port", type=int, help="proxy listen port")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the sidecar proxy")
    add_config_flags(p)
    p.add_argument("--admin-port", type=int, help="admin listen port (/metrics, /healthz, /readyz)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from genai_sre.app import Sidecar
    from genai_sre.wiring import wire

    config = load_config(args.config, upstream=args.upstream, host=args.host, port=args.port)
    if args.admin_port:
        config = replace(config, admin=replace(config.admin, port=args.admin_port))
    setup_logging(config.logging.level, config.logging.format)
    private_process()  # files in the data directory: 0600
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is optional
        pass

    async def main() -> None:
        sidecar = Sidecar(config)
        await wire(sidecar)
        await sidecar.run_until_signal()

    asyncio.run(main())
    return 0
