"""`genai-sre eval` and `genai-sre train` through the real entry points."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from genai_sre.cli import main

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "hallucination"


def sample(tmp_path: Path, per_split: int = 40) -> Path:
    """A small file of RAGTruth rows from every split, without source/split for the test rows."""
    counts: dict[str, int] = {}
    out = []
    with gzip.open(DATA / "ragtruth.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if counts.get(row["split"], 0) < per_split:
                counts[row["split"]] = counts.get(row["split"], 0) + 1
                out.append(row)
    path = tmp_path / "sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    return path


def test_eval_prints_json_and_writes_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = sample(tmp_path)
    scores = tmp_path / "scores.jsonl"
    assert main(["eval", "hallucination", "--dataset", str(data), "--json", "--scores-out", str(scores)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["overall"]["n"] == 40
    assert {"auroc", "auroc_length", "auroc_unsupported_share", "recall_at_slo"} <= set(report["overall"])
    lo, hi = report["overall"]["auroc_ci"]
    assert lo <= report["overall"]["auroc"] <= hi and len(report["overall"]["f1_ci"]) == 2
    assert {"task prior", "task+length"} <= set(report["overall"]["others"])
    lines = [json.loads(x) for x in scores.read_text().splitlines()]
    assert len(lines) == 40 and set(lines[0]) == {"id", "score", "flagged"}


def test_eval_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "hallucination", "--dataset", str(sample(tmp_path)), "--split", "dev"]) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "task=" in out and "answers/s" in out
    assert "AUROC task prior" in out and "AUROC task+length" in out and "[95% CI]" in out


def test_train_writes_a_loadable_artefact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    assert main(["train", "hallucination", "--dataset", str(sample(tmp_path, 150)), "--out", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 150 and out.is_file()
    assert main(["eval", "hallucination", "--dataset", str(sample(tmp_path)), "--model-path", str(out), "--json"]) == 0


def test_unknown_evaluator_and_bad_dataset_exit_2(tmp_path: Path) -> None:
    assert main(["eval", "nope", "--dataset", str(sample(tmp_path))]) == 2
    assert main(["eval", "hallucination", "--dataset", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["eval", "hallucination", "--dataset", str(sample(tmp_path)), "-o", "colour=blue"]) == 2
    assert main(["eval", "hallucination", "--dataset", str(sample(tmp_path)), "-o", "cross_encoder=maybe"]) == 2
    assert main(["train", "hallucination", "--dataset", str(sample(tmp_path)), "--stage", "poetry"]) == 2
