"""`genai-sre silences list|add|expire`: manage the silences of the incident store.

They live where the primary keeps them: the incident store (`--store-url`,
the config's `incidents.store_url`, `$GENAI_SRE_INCIDENTS_URL`, or SQLite in
the data directory), shared by every primary on that store. `--file` manages a
JSON silences file instead (an instance without an incident store). Running
sidecars pick changes up before their next notification, without a restart
(the admin API does the same over HTTP).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from genai_sre.alerting.matchers import parse_matchers
from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.cli.incidents import add_data_dir_args, data_dir, open_store_of

__all__ = ["parse_duration", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `1d` to seconds."""
    unit = text[-1:] if text[-1:] in _UNITS else "s"
    number = text[:-1] if text[-1:] in _UNITS else text
    try:
        value = float(number) * _UNITS[unit]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 30m, 2h, 1d") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("silences", help="mute alerts matching label matchers until a silence expires")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)
    inner = p.add_subparsers(dest="silences_command", metavar="SUBCOMMAND")
    ls = inner.add_parser("list", help="active silences")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    add = inner.add_parser("add", help='add a silence, e.g. add \'slo="chat-latency"\' --for 2h -c "maintenance"')
    add.add_argument("matchers", nargs="+", help='label matchers: name="value", !=, =~, !~')
    add.add_argument("--for", dest="duration_s", type=parse_duration, required=True, help="how long: 30m, 2h, 1d")
    add.add_argument("-c", "--comment", default="")
    add.set_defaults(func=_add)
    expire = inner.add_parser("expire", help="end a silence now")
    expire.add_argument("id")
    expire.set_defaults(func=_expire)
    for q in (ls, add, expire):
        add_data_dir_args(q)
        q.add_argument("--file", help="a JSON silences file (relative: in the data dir) instead of the store")


def _run(args: argparse.Namespace, action: Callable[[Silences], int]) -> int:
    if args.file:
        f = Path(args.file)
        return action(Silences(time.time, f if f.is_absolute() else data_dir(args) / f))
    store = open_store_of(args)
    try:
        return action(Silences(time.time, backend=StoreSilences(store)))
    finally:
        store.close()


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _list(args: argparse.Namespace) -> int:
    def show(silences: Silences) -> int:
        items = silences.list()
        if args.json:
            print(json.dumps([s.to_json() for s in items], indent=2))
            return 0
        if not items:
            print("no active silences")
        for s in items:
            print(f"{s.id}  until {_ts(s.ends_at)}  {', '.join(s.matchers)}  {s.comment}".rstrip())
        return 0

    return _run(args, show)


def _add(args: argparse.Namespace) -> int:
    try:  # a bad matcher is refused before any store is opened
        parse_matchers(args.matchers)
    except ValueError as exc:
        print(f"genai-sre: {exc}")
        return 2

    def add(silences: Silences) -> int:
        s = silences.add(args.matchers, ends_at=time.time() + args.duration_s, comment=args.comment)
        print(f"silence {s.id} until {_ts(s.ends_at)}")
        return 0

    return _run(args, add)


def _expire(args: argparse.Namespace) -> int:
    def expire(silences: Silences) -> int:
        if not silences.expire(args.id):
            print(f"genai-sre: no silence {args.id!r}")
            return 1
        print(f"silence {args.id} expired")
        return 0

    return _run(args, expire)
