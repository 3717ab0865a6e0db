"""`genai-sre train <trainer> --dataset F ...`: fit a detector's model on the train split, choose on dev."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genai_sre.plugins import resolve

__all__ = ["register", "run"]

GROUP = "genai_sre.trainers"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a detector's model from labelled datasets (train/dev splits)")
    p.add_argument("trainer", help="trainer name (entry point in genai_sre.trainers), e.g. hallucination")
    p.add_argument("--dataset", type=Path, action="append", required=True, help="dataset file; repeat for several")
    p.add_argument("--out", type=Path, default=None, help="where to write the artefact (default: the shipped path)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument(
        "--stage", default=None,
        help="which of the detector's models to train, if it has several (hallucination: lexical, cross-encoder)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    trainer = resolve(GROUP, args.trainer)
    extra = {"stage": args.stage} if args.stage else {}
    summary = trainer(list(args.dataset), args.out, progress=None if args.quiet else print, **extra)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
