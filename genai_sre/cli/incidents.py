"""`genai-sre incidents list|show|ack|resolve|note|stats`, straight on the SQLite store.

It opens `<data_dir>/incidents.db` (from `--data-dir`, or the config's
`storage.data_dir`), so it works whether the sidecar runs or not; SQLite's
locking keeps the two writers apart.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_sre.incidents.service import IncidentService, incident_json
from genai_sre.incidents.store import IncidentStore

__all__ = ["add_data_dir_args", "open_service", "register"]


def add_data_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="sidecar config (for storage.data_dir)")
    p.add_argument("--data-dir", help="data directory holding incidents.db (default: the config's storage.data_dir)")


def data_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "data_dir", None):
        return Path(args.data_dir)
    from genai_sre.config import load_config

    config = load_config(args.config)
    return config.resolve(config.storage.data_dir)


def open_service(args: argparse.Namespace) -> IncidentService:
    return IncidentService(IncidentStore.open(data_dir(args)))


def _ts(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return (
        f"{seconds:.0f}s" if seconds < 120 else (f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h")
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("incidents", help="list, show, acknowledge, resolve and annotate incidents")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)
    inner = p.add_subparsers(dest="incidents_command", metavar="SUBCOMMAND")

    ls = inner.add_parser("list", help="incidents, newest first")
    ls.add_argument("--status", choices=["open", "acknowledged", "resolved", "active"], help="filter by status")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    show = inner.add_parser("show", help="one incident with its figures and timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    for name, func, helptext in (("ack", _ack, "acknowledge"), ("resolve", _resolve, "resolve")):
        q = inner.add_parser(name, help=f"{helptext} an incident")
        q.add_argument("id")
        q.add_argument("-m", "--message", default="", help="text for the timeline")
        q.set_defaults(func=func)

    note = inner.add_parser("note", help="add a note, mitigation or action item to the timeline")
    note.add_argument("id")
    note.add_argument("text")
    note.add_argument("--kind", choices=["note", "mitigation", "action_item"], default="note")
    note.set_defaults(func=_note)

    stats = inner.add_parser("stats", help="time to detect/ack/resolve; DORA change failure rate per model")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=_stats)

    for q in (ls, show, *(a for a in inner.choices.values() if a not in (ls, show))):
        add_data_dir_args(q)


def _list(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        incidents = service.list_incidents(args.status, args.limit)
    finally:
        service.store.close()
    if args.json:
        print(json.dumps([incident_json(i) for i in incidents], indent=2))
        return 0
    if not incidents:
        print("no incidents")
        return 0
    rows = [["ID", "STATUS", "SEV", "OPENED (UTC)", "TITLE"]]
    rows += [[i.id, i.status, i.severity, _ts(i.opened_at), i.title[:70]] for i in incidents]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0


def _show(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        detail = service.detail(args.id)
    except KeyError as exc:
        print(f"genai-sre: {exc.args[0]}")
        return 1
    finally:
        service.store.close()
    if args.json:
        print(json.dumps(detail, indent=2))
        return 0
    inc: dict[str, Any] = detail["incident"]
    figs = detail["figures"]
    print(f"incident {inc['id']}: {inc['title']}")
    print(f"  status {inc['status']}  severity {inc['severity']}  group {inc['group_key']}")
    print(
        f"  opened {_ts(inc['opened_at'])}  acknowledged {_ts(inc['acknowledged_at'])}"
        f"  resolved {_ts(inc['resolved_at'])}"
    )
    print(
        f"  time to detect {_dur(figs['time_to_detect_s'])}  to ack {_dur(figs['time_to_ack_s'])}"
        f"  to resolve {_dur(figs['time_to_resolve_s'])}"
    )
    print("timeline (UTC):")
    for e in detail["timeline"]:
        print(f"  {_ts(e['at'])}  {e['kind']:<14} {e['text']}")
    return 0


def _change(args: argparse.Namespace, action: str) -> int:
    service = open_service(args)
    try:
        incident = service.ack(args.id, args.message) if action == "ack" else service.resolve(args.id, args.message)
    except KeyError as exc:
        print(f"genai-sre: {exc.args[0]}")
        return 1
    finally:
        service.store.close()
    print(f"incident {incident.id}: {incident.status}")
    return 0


def _ack(args: argparse.Namespace) -> int:
    return _change(args, "ack")


def _resolve(args: argparse.Namespace) -> int:
    return _change(args, "resolve")


def _note(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        service.note(args.id, args.text, args.kind)
    except KeyError as exc:
        print(f"genai-sre: {exc.args[0]}")
        return 1
    finally:
        service.store.close()
    print(f"incident {args.id}: {args.kind} added")
    return 0


def _stats(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        s = service.stats()
    finally:
        service.store.close()
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(s), indent=2))
        return 0
    print(f"incidents {s.incidents}: open {s.open}, acknowledged {s.acknowledged}, resolved {s.resolved}")
    print(
        f"mean time to detect {_dur(s.mean_time_to_detect_s)}, to acknowledge {_dur(s.mean_time_to_ack_s)}, "
        f"to resolve {_dur(s.mean_time_to_resolve_s)}"
    )
    if not s.models:
        print("no deploy markers (genai-sre annotate deploy --model M --version V)")
    for m in s.models:
        failed = f" (failed: {', '.join(m.failed_versions)})" if m.failed_versions else ""
        print(
            f"model {m.model}: {m.deploys} deploys, change failure rate {m.change_failure_rate:.0%}{failed}, "
            f"failed-deployment recovery {_dur(m.recovery_s)}"
        )
    return 0
