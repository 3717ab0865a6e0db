"""`genai-sre incidents list|show|ack|resolve|note|stats|prune|migrate`, straight on the incident store.

It opens the store the sidecar uses: `--store-url`, else the config's
`incidents.store_url`, else `$GENAI_SRE_INCIDENTS_URL`, else SQLite
`<data_dir>/incidents.db` (`--data-dir`, or the config's `storage.data_dir`).
It works whether the sidecar runs or not; the store serialises the writers.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_sre.incidents.service import IncidentService, incident_json
from genai_sre.incidents.store import STORE_URL_ENV, IncidentStore, open_store, resolve_store_url
from genai_sre.storage.sql import redact_url

__all__ = ["add_data_dir_args", "open_service", "open_store_of", "register"]

CLI_BUSY_TIMEOUT_S = 5.0  # the command line may wait longer than a server for the sidecar's write lock


def add_data_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="sidecar config (for storage.data_dir)")
    p.add_argument("--data-dir", help="data directory holding incidents.db (default: the config's storage.data_dir)")
    p.add_argument(
        "--store-url",
        help=f"incident store: postgresql://user@host/db or sqlite:PATH (default: the config's "
        f"incidents.store_url, else ${STORE_URL_ENV}, else <data dir>/incidents.db)",
    )


def data_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "data_dir", None):
        return Path(args.data_dir)
    from genai_sre.config import load_config

    config = load_config(args.config)
    return config.resolve(config.storage.data_dir)


def store_url(args: argparse.Namespace) -> str:
    if getattr(args, "store_url", None):
        return str(args.store_url)
    configured = ""
    if getattr(args, "config", None):
        from genai_sre.config import load_config

        configured = load_config(args.config).incidents.store_url
    return resolve_store_url(configured)


def _open(url: str, folder: Path) -> IncidentStore:
    options = {} if url.startswith(("postgresql:", "postgres:")) else {"busy_timeout_s": CLI_BUSY_TIMEOUT_S}
    return open_store(url, folder, **options)


def open_store_of(args: argparse.Namespace) -> IncidentStore:
    return _open(store_url(args), data_dir(args))


def open_service(args: argparse.Namespace) -> IncidentService:
    return IncidentService(open_store_of(args))


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

    prune = inner.add_parser("prune", help="delete resolved incidents, annotations and silences older than N days")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    prune.set_defaults(func=_prune)

    for q in (ls, show, *(a for a in inner.choices.values() if a not in (ls, show))):
        add_data_dir_args(q)

    migrate = inner.add_parser(
        "migrate", help="copy every incident, timeline, annotation, receipt and silence into an empty store"
    )
    migrate.add_argument("--from", dest="source", required=True, help="sqlite:PATH (or postgresql://...)")
    migrate.add_argument("--to", dest="target", required=True, help="postgresql://user@host/db (or sqlite:PATH)")
    migrate.set_defaults(func=_migrate)


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


def _prune(args: argparse.Namespace) -> int:
    import time

    from genai_sre.incidents.stack import RECEIPT_RETENTION_S

    if args.older_than <= 0:
        print("genai-sre: --older-than must be positive")
        return 2
    store = open_store_of(args)
    try:
        before = time.time() - args.older_than * 86400
        counts = store.prune(incidents_before=before, receipts_before=min(before, time.time() - RECEIPT_RETENTION_S))
    finally:
        store.close()
    print("deleted " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    for url in (args.source, args.target):
        if not url.startswith(("sqlite:", "postgresql://", "postgres://")):
            print(f"genai-sre: store URLs are sqlite:PATH or postgresql://..., got {redact_url(url)!r}")
            return 2
    if args.source.startswith("sqlite:") and not Path(args.source.removeprefix("sqlite:")).is_file():
        print(f"genai-sre: no SQLite file at {args.source.removeprefix('sqlite:')}")
        return 1
    source = _open(args.source, Path("."))
    try:
        target = _open(args.target, Path("."))
        try:
            counts = target.copy_from(source)
        finally:
            target.close()
    finally:
        source.close()
    print(f"copied into {redact_url(args.target)}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0
