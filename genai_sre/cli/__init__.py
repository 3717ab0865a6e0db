"""The `genai-sre` command line.

Each subcommand lives in its own module of this package and exposes
`register(subparsers)`; it sets `func` on its parser, a callable taking the
parsed arguments and returning the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from genai_sre import __version__
from genai_sre.errors import GenAISREError

__all__ = ["main"]

# Order is the order of `genai-sre --help`.
COMMANDS = (
    "serve",
    "demo",
    "mock_upstream",
    "check_config",
    "rules",
    "slo",
    "dashboards",
    "eval",
    "train",
    "incidents",
    "silences",
    "postmortem",
    "annotate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-sre", description="A reliability sidecar for LLM traffic.")
    parser.add_argument("--version", action="version", version=f"genai-sre {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"genai_sre.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GenAISREError as exc:
        logging.getLogger("genai_sre").debug("command failed", exc_info=True)
        print(f"genai-sre: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
