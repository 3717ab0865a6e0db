from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from genai_sre.errors import DatasetError
from genai_sre.evaluation import DatasetRow, ScoredRow, auroc, evaluate, load_dataset, unsupported_share, write_scores

ROWS = [
    {"id": "a", "context": "The sky is blue.", "question": "", "answer": "The sky is blue.", "label": 0,
     "source": "toy", "split": "test"},
    {"id": "b", "context": "The sky is blue.", "question": "", "answer": "The sky is green today.", "label": 1,
     "source": "toy", "split": "test"},
    {"id": "c", "context": "Cats purr.", "question": "Do cats purr?", "answer": "Yes, cats purr.", "label": 0,
     "source": "toy", "split": "dev"},
]  # fmt: skip


def write(path: Path, rows: list[dict[str, object]], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


class LengthEvaluator:
    def score(self, rows: Sequence[DatasetRow]) -> Sequence[ScoredRow]:
        return [ScoredRow(len(r.answer) / 100, len(r.answer) > 20, len(r.answer) > 30, "toy") for r in rows]


def test_reads_plain_and_gzipped_files_and_filters_splits(tmp_path: Path) -> None:
    plain = write(tmp_path / "d.jsonl", ROWS)
    packed = write(tmp_path / "d.jsonl.gz", ROWS, gz=True)
    assert load_dataset(plain) == load_dataset(packed)
    assert [r.id for r in load_dataset(packed, split="test")] == ["a", "b"]
    no_meta = [{k: v for k, v in r.items() if k not in ("source", "split")} for r in ROWS]
    assert len(load_dataset(write(tmp_path / "n.jsonl", no_meta))) == 3


def test_contract_errors_name_the_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.jsonl", [ROWS[0], {"id": "x", "context": "", "answer": "", "label": 0}])
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: missing key\(s\) question"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.jsonl")


def test_auroc_matches_sklearn_with_ties() -> None:
    y = [0, 1, 1, 0, 1, 0, 0, 1]
    s = [0.1, 0.4, 0.4, 0.4, 0.9, 0.2, 0.9, 0.5]
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_unsupported_share() -> None:
    assert unsupported_share("the sky is blue", "", "The sky is green") == pytest.approx(0.25)


def test_evaluate_and_scores_out(tmp_path: Path) -> None:
    rows = load_dataset(write(tmp_path / "d.jsonl", ROWS))
    report = evaluate(LengthEvaluator(), rows, dataset="d", split="all", batch_size=2)
    assert report.overall.n == 3 and report.overall.positives == 1
    assert report.overall.recall == 1.0 and report.overall.auroc == 1.0
    assert set(report.groups) == {"toy"} and report.answers_per_s > 0
    assert "scores" not in report.to_json()
    out = tmp_path / "scores.jsonl"
    write_scores(out, rows, report.scores)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[1] == {"id": "b", "score": 0.23, "flagged": True}
    with pytest.raises(DatasetError):
        evaluate(LengthEvaluator(), [])


def test_json_report_has_no_nan(tmp_path: Path) -> None:
    rows = load_dataset(write(tmp_path / "d.jsonl", ROWS[:1]))  # one class: AUROC undefined
    report = evaluate(LengthEvaluator(), rows).to_json()
    assert report["overall"]["auroc"] is None
    json.dumps(report, allow_nan=False)


def test_bootstrap_resamples_documents_not_answers() -> None:
    from genai_sre.evaluation import bootstrap_intervals

    rng = np.random.default_rng(0)
    labels = [int(v) for v in rng.integers(0, 2, 200)]
    scores = [lab + float(rng.normal(0, 1.2)) for lab in labels]
    point = auroc(labels, scores)
    alone = bootstrap_intervals([str(i) for i in range(200)], labels, {"s": scores}, replicates=400)["s"]
    assert alone[0] < point < alone[1]
    assert alone == bootstrap_intervals([str(i) for i in range(200)], labels, {"s": scores}, replicates=400)["s"]
    # The same 200 answers written from 20 documents: fewer independent units, a wider interval.
    grouped = bootstrap_intervals([str(i % 20) for i in range(200)], labels, {"s": scores}, replicates=400)["s"]
    flagged = [s > 0.5 for s in scores]
    f1 = bootstrap_intervals([str(i) for i in range(200)], labels, {}, flagged, replicates=400)["f1"]
    assert 0 < f1[0] < f1[1] < 1
    assert (grouped[1] - grouped[0]) != (alone[1] - alone[0])


def test_report_carries_intervals_and_other_scores(tmp_path: Path) -> None:
    class WithBaseline(LengthEvaluator):
        def score(self, rows: Sequence[DatasetRow]) -> Sequence[ScoredRow]:
            return [ScoredRow(s.score, s.flagged, s.slo_flagged, s.group, (("words", float(len(r.answer.split()))),))
                    for r, s in zip(rows, super().score(rows), strict=True)]  # fmt: skip

    rows = [DatasetRow(str(i), f"doc {i % 7}", "", "word " * (i % 5 + 1), i % 2) for i in range(60)]
    report = evaluate(WithBaseline(), rows, bootstrap=200)
    lo, hi = report.overall.auroc_ci
    assert lo <= report.overall.auroc <= hi
    assert set(report.overall.others) == {"words"}
    data = report.to_json()
    assert len(data["overall"]["auroc_ci"]) == 2 and len(data["overall"]["others"]["words"]) == 3
    json.dumps(data, allow_nan=False)
