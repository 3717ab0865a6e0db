"""`genai-sre annotate deploy --model M --version V`: record a deploy marker (and other annotations).

`genai-sre annotate list [--kind mitigation]` prints what was recorded, the
sidecar's own fail-overs and fail-backs included.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from genai_sre.cli.incidents import add_data_dir_args, open_service
from genai_sre.events import Annotation

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("annotate", help="record a deploy marker, model version change or mitigation")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)
    inner = p.add_subparsers(dest="annotate_command", metavar="KIND")
    for kind, helptext in (
        ("deploy", "a deployment of a model version (feeds DORA change failure rate)"),
        ("model_version", "the upstream switched model version"),
        ("mitigation", "a mitigation applied (rollback, traffic shift, prompt change)"),
    ):
        q = inner.add_parser(kind, help=helptext)
        q.add_argument("--model", required=kind != "mitigation", help="model name (as in the `model` label)")
        q.add_argument("--version", required=kind == "deploy", help="model or release version")
        q.add_argument("--text", default="", help="free text for the timeline")
        q.add_argument("--at", type=float, help="Unix seconds (default: now)")
        add_data_dir_args(q)
        q.set_defaults(func=run, kind=kind)
    ls = inner.add_parser("list", help="list annotations, oldest first (e.g. --kind mitigation for fail-overs)")
    ls.add_argument("--kind", help="only this kind (deploy, model_version, mitigation, ...)")
    ls.add_argument("--since", type=float, default=0.0, help="Unix seconds (default: all)")
    ls.add_argument("--until", type=float, default=float("inf"), help="Unix seconds (default: now)")
    ls.add_argument("--limit", type=int, default=100, help="at most this many, the newest (default 100)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of lines")
    add_data_dir_args(ls)
    ls.set_defaults(func=list_annotations)


def run(args: argparse.Namespace) -> int:
    labels = {k: v for k, v in (("model", args.model), ("version", args.version)) if v}
    annotation = Annotation(args.kind, args.at if args.at is not None else time.time(), args.text, labels)
    service = open_service(args)
    try:
        annotation_id = service.annotate(annotation)
    finally:
        service.store.close()
    print(f"annotation {annotation_id}: {args.kind} {' '.join(f'{k}={v}' for k, v in labels.items())}".rstrip())
    return 0


def list_annotations(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("genai-sre: error: --limit must be at least 1")
        return 2
    service = open_service(args)
    try:
        found = service.store.annotations(args.kind, args.since, args.until)[-args.limit :]
    finally:
        service.store.close()
    if args.json:
        out = [{"kind": a.kind, "at": a.at, "text": a.text, "labels": dict(a.labels)} for a in found]
        print(json.dumps({"annotations": out}, indent=2))
        return 0
    if not found:
        print("no annotations" + (f" of kind {args.kind}" if args.kind else ""))
        return 0
    for a in found:
        when = datetime.fromtimestamp(a.at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        labels = " ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        print(f"{when} UTC  {a.kind:<13} {labels}  {a.text}".rstrip())
    return 0
