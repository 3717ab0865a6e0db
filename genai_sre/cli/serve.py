"""`genai-sre serve`: run the sidecar (a supervisor, proxy workers and an agent; see `genai_sre.supervisor`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from genai_sre.config import Config, load_config
from genai_sre.errors import ConfigError
from genai_sre.logs import setup_logging
from genai_sre.storage.files import private_process

__all__ = ["register"]

logger = logging.getLogger("genai_sre.serve")


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="config file (env GENAI_SRE_CONFIG)")
    p.add_argument("--upstream", help="upstream URL (overrides the first configured upstream)")
    p.add_argument("--host", help="proxy listen address")
    p.add_argument("--port", type=int, help="proxy listen port")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the sidecar proxy")
    add_config_flags(p)
    p.add_argument("--admin-port", type=int, help="admin listen port (/metrics, /healthz, /readyz)")
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("GENAI_SRE_WORKERS", "1")),
        help="proxy worker processes sharing the proxy port (SO_REUSEPORT); default 1 (env GENAI_SRE_WORKERS)",
    )
    p.add_argument(
        "--single-process",
        action="store_true",
        help="forward and score in one process and one event loop (for debugging; scoring then shares the "
        "forwarding path's CPU)",
    )
    # Set by the supervisor for its children; not for people.
    p.add_argument("--role", choices=("proxy", "agent"), help=argparse.SUPPRESS)
    p.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--admin-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--channel-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--channel", help=argparse.SUPPRESS)
    p.add_argument("--heartbeat-fd", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Config:
    from dataclasses import replace

    config = load_config(args.config, upstream=args.upstream, host=args.host, port=args.port)
    if args.admin_port:
        config = replace(config, admin=replace(config.admin, port=args.admin_port))
    return config


def _child_argv(args: argparse.Namespace) -> list[str]:
    """The children's command line: the same config flags, so they load the same config."""
    from genai_sre.supervisor import command_prefix

    argv = [*command_prefix(), "serve"]
    for flag in ("config", "upstream", "host", "port", "admin_port"):
        value = getattr(args, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    setup_logging(config.logging.level, config.logging.format)
    private_process()  # files in the data directory: 0600
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is optional
        pass

    if args.role == "proxy":
        from genai_sre.roles import run_proxy

        asyncio.run(run_proxy(config, args.slot, args.listen_fd, args.channel, args.heartbeat_fd))
        return 0
    if args.role == "agent":
        from genai_sre.preflight import check_findings
        from genai_sre.roles import run_agent
        from genai_sre.supervisor import EX_CONFIG

        try:
            check_findings(config)
            _notes(config)  # here, not in the supervisor: it loads the detector classes
            asyncio.run(run_agent(config, args.admin_fd, args.channel_fd, args.heartbeat_fd))
        except ConfigError as exc:  # the supervisor stops instead of restarting the agent
            logger.error("configuration error: %s", exc)
            print(f"genai-sre: error: {exc}", file=sys.stderr)
            return EX_CONFIG
        return 0
    _preflight(config, findings=args.single_process)
    if args.single_process:
        _notes(config)
        return _single_process(config)
    if not 1 <= args.workers <= 64:
        print("genai-sre: error: --workers must be between 1 and 64", file=sys.stderr)
        return 2

    from genai_sre.supervisor import Supervisor

    supervisor = Supervisor(config, _child_argv(args), workers=args.workers)
    supervisor.bind()
    return asyncio.run(supervisor.run())


def _preflight(config: Config, findings: bool) -> None:
    """Refuse an SLO naming a detector that is not configured (and, in one process, a finding it never reports)."""
    from genai_sre.preflight import check, check_findings

    (check_findings if findings else check)(config)


def _notes(config: Config) -> None:
    """Say once, at start, what the config leaves idle."""
    from genai_sre.preflight import idle_notes

    for note in idle_notes(config):
        logger.info(note)


def _single_process(config: Config) -> int:
    from genai_sre.app import Sidecar
    from genai_sre.wiring import wire

    async def main() -> None:
        sidecar = Sidecar(config)
        await wire(sidecar.agent)
        await sidecar.run_until_signal()

    asyncio.run(main())
    return 0
