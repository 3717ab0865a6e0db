"""One hand-made case per signal: each moves its own feature, and the risk, the right way."""

from __future__ import annotations

import pytest

from detectors.hallucination.features import FEATURE_NAMES, extract, infer_task
from detectors.hallucination.text import normalise_number, sentences, stem

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
    "It is 330 metres tall and was designed by the engineering company of Gustave Eiffel. "
    "The tower is not open to cars. About 7 million people visit it every year."
)
QUESTION = "When was the Eiffel Tower completed and how tall is it?"


def feature(answer: str, name: str, context: str = CONTEXT, question: str = QUESTION) -> float:
    return extract(context, question, answer).values[FEATURE_NAMES.index(name)]


def test_faithful_paraphrase_is_supported() -> None:
    row = extract(CONTEXT, QUESTION, "Completed in 1889, the Eiffel Tower stands 330 metres high.")
    assert row.values[FEATURE_NAMES.index("unsupported_share")] < 0.34  # "stands", "high"
    assert row.values[FEATURE_NAMES.index("unsupported_numbers_log")] == 0.0
    assert row.values[FEATURE_NAMES.index("unsupported_names_log")] == 0.0


def test_wrong_number_is_unsupported_and_pointed_at() -> None:
    answer = "The Eiffel Tower was completed in 1901 and is 330 metres tall."
    assert feature(answer, "unsupported_numbers_log") > 0
    assert feature(answer, "unsupported_number_share") == pytest.approx(0.5)
    claims = extract(CONTEXT, QUESTION, answer).claims
    assert claims and "1901" in claims[0].unsupported
    assert answer[claims[0].start : claims[0].end] == claims[0].text


def test_number_mismatch_against_best_sentence() -> None:
    # 7 is in the context, but not in the sentence about the height: a swapped number.
    assert feature("It is 7 metres tall and was designed by Gustave Eiffel's company.", "number_mismatch_log") > 0
    assert feature("It is 330 metres tall and was designed by Gustave Eiffel's company.", "number_mismatch_log") == 0


def test_invented_name_is_counted() -> None:
    answer = "The tower was designed by the engineering company of Gustave Eiffel and Maurice Koechlin."
    assert feature(answer, "unsupported_names_log") > 0
    claims = extract(CONTEXT, QUESTION, answer).claims
    assert any("Koechlin" in c.unsupported for c in claims)


def test_negation_flip_against_best_sentence() -> None:
    assert feature("The tower is open to cars.", "negation_mismatch_log") > 0
    assert feature("The tower is not open to cars.", "negation_mismatch_log") == 0


def test_task_shape_is_read_from_the_request() -> None:
    assert infer_task(CONTEXT, QUESTION) == "qa"
    assert infer_task(CONTEXT, "") == "summary"
    assert infer_task(CONTEXT, "Summarize the following news within 100 words.") == "summary"
    assert infer_task('{"name": "Finch & Fork", "city": "Santa Barbara"}', "") == "data2text"
    assert infer_task('[{"name": "Finch & Fork"}]', "Describe it.") == "data2text"
    # Bracketed text is not JSON: a citation marker or a redaction placeholder leaves the shape alone.
    assert infer_task("[1] " + CONTEXT, QUESTION) == infer_task("[Email Address] " + CONTEXT, QUESTION) == "qa"
    # The answer's length refines the shape: a few words to a question, a gist of a document.
    assert infer_task(CONTEXT, QUESTION, "It opened in 1889.") == "short"
    assert infer_task(CONTEXT, QUESTION, " ".join(["word"] * 41)) == "qa"
    assert infer_task(CONTEXT, "", "A tower in Paris.") == "brief"


def test_light_normalisation() -> None:
    assert normalise_number("1,000") == "1000"
    assert normalise_number("5.0") == "5"
    assert normalise_number("ten") == "10"
    assert normalise_number("tower") is None
    assert stem("grilling") == stem("grill")
    assert stem("prices") == stem("price")
    text = "First one. Second one!\nThird"
    assert [text[s.start : s.end] for s in sentences(text)] == ["First one.", "Second one!", "Third"]
