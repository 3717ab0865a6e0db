"""`genai-sre eval <evaluator> --dataset F`: score a labelled JSONL dataset and print the metrics."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from genai_sre.errors import ConfigError
from genai_sre.evaluation import Evaluator, GroupMetrics, Report, evaluate, load_dataset, write_scores
from genai_sre.plugins import resolve

__all__ = ["register", "run"]

GROUP = "genai_sre.evaluators"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="evaluate a detector on a labelled dataset (JSONL, gzipped or not)")
    p.add_argument("evaluator", help="evaluator name (entry point in genai_sre.evaluators), e.g. hallucination")
    p.add_argument("--dataset", type=Path, action="append", required=True, help="dataset file; repeat for several")
    p.add_argument("--split", default="test", help="split to evaluate: train, dev, test or 'all' (default: test)")
    p.add_argument("--model-path", default=None, help="model artefact for the evaluator (default: the shipped one)")
    p.add_argument("--batch-size", type=int, default=32, help="answers per scoring batch (default: 32)")
    p.add_argument(
        "--option", "-o", action="append", default=[], metavar="KEY=VALUE",
        help="an evaluator option, e.g. -o cross_encoder=on for the hallucination cascade; repeatable",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="document resamples for the 95%% intervals (0: none)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--scores-out", type=Path, default=None, help="write one {id, score, flagged} line per answer")
    p.set_defaults(func=run)


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3f}"


def _ci(v: float, ci: tuple[float, float]) -> str:
    return _fmt(v) if math.isnan(ci[0]) else f"{_fmt(v)} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _rows(report: Report) -> list[tuple[str, GroupMetrics]]:
    return [("overall", report.overall), *((f"task={k}", v) for k, v in report.groups.items())]


def _print_table(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.dataset} [{report.split}]")
    for col in (
        "group",
        "n",
        "pos",
        "P",
        "R",
        "F1 [95% CI]",
        "bal.acc",
        "R@slo",
        "FAR@slo",
        "AUROC [95% CI]",
        "AUROC len",
        "AUROC unsup",
    ):
        table.add_column(col, justify="right" if col != "group" else "left")
    others = list(dict.fromkeys(k for _, m in _rows(report) for k in m.others))
    for name in others:
        table.add_column(f"AUROC {name}", justify="right")
    for name, m in _rows(report):
        table.add_row(
            name, str(m.n), str(m.positives), _fmt(m.precision), _fmt(m.recall), _ci(m.f1, m.f1_ci),
            _fmt(m.balanced_accuracy), _fmt(m.recall_at_slo), _fmt(m.false_alarm_rate_at_slo),
            _ci(m.auroc, m.auroc_ci), _fmt(m.auroc_length), _fmt(m.auroc_unsupported_share),
            *(_ci(m.others[k][0], m.others[k][1:]) if k in m.others else "-" for k in others),
        )  # fmt: skip
    console = Console()
    console.width = max(console.width, 150 + 24 * len(others))  # a narrow pipe must not truncate numbers
    console.print(table)
    console.print(
        f"throughput {report.answers_per_s:.0f} answers/s (batches of {report.batch_size}); "
        f"per answer p50 {report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms (one at a time)"
    )


def run(args: argparse.Namespace) -> int:
    from rich.progress import Progress, TaskID

    factory = resolve(GROUP, args.evaluator)
    options: dict[str, str] = {"model_path": args.model_path} if args.model_path else {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = value.strip()
    try:
        evaluator: Evaluator = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"evaluator {args.evaluator!r} does not take these options {sorted(options)}: {exc}") from exc
    split = None if args.split == "all" else args.split
    reports: list[dict[str, Any]] = []
    for path in args.dataset:
        rows = load_dataset(path, split=split)
        with Progress(transient=True, disable=args.json) as progress:
            task = progress.add_task(f"scoring {path.name}", total=len(rows))

            def advance(n: int, t: TaskID = task, bar: Progress = progress) -> None:
                bar.advance(t, n)

            report = evaluate(
                evaluator, rows, dataset=path.name, split=args.split, batch_size=args.batch_size,
                bootstrap=args.bootstrap, progress=advance,
            )  # fmt: skip
        if args.scores_out is not None:
            out = args.scores_out if len(args.dataset) == 1 else args.scores_out.with_name(
                f"{args.scores_out.stem}.{path.name.split('.')[0]}{args.scores_out.suffix}"
            )  # fmt: skip
            write_scores(out, rows, report.scores)
        if args.json:
            reports.append(report.to_json())
        else:
            _print_table(report)
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    return 0
