"""`genai-sre annotate deploy --model M --version V`: record a deploy marker (and other annotations)."""

from __future__ import annotations

import argparse
import time

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
