"""Synthetic short answers, made from a split's own contexts, to teach the model what one wrong word means.

The shipped benchmarks hold answers of sentences to paragraphs. Behind a real
API many answers are a few words ("It opened in 1937."), and a model fitted
only on long answers under-weights a single invented number or name: a short
answer with one wrong figure scored about 0.3 and was never flagged.

`short_answers(rows, n, seed)` draws `n` answers from the rows' own contexts:
half copy one context sentence or abstain (faithful, label 0), half copy one
and swap a number or a name for one the context does not contain (invented,
label 1); some of either kind get the framing real answers
carry ("Based on the given passages, ..."). The question is the row's own when it is short, else a
generic one. Deterministic for a given input order and seed, so retraining
reproduces the artefact. Training uses synthetic rows from the train split;
the choice of the regularisation strength also scores synthetic rows made
from the dev split; thresholds are chosen on real dev answers only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from detectors.hallucination.features import infer_task
from detectors.hallucination.text import content_stems, is_content, normalise_number, sentences, words
from genai_sre.evaluation import DatasetRow

__all__ = ["SOURCE", "padded", "short_answers"]

SOURCE = "synthetic-short"
_MIN_WORDS, _MAX_WORDS = 4, 14
_MAX_QUESTION_WORDS = 60
_GENERIC_QUESTIONS = (
    "What does the document say?",
    "What is stated in the text?",
    "Answer briefly from the passage.",
)
# Framing that real answers wrap around a fact, put on faithful and invented answers alike so
# that it carries no signal; and abstentions, which are faithful whatever they lack.
_FRAMES = (
    "Based on the given passages, {}",
    "According to the text, {}",
    "The passages state that {}",
    "Yes, {}",
    "In short, {}",
)
_ABSTENTIONS = (
    "Unable to answer based on the given passages.",
    "The passages do not provide this information.",
    "The text does not say.",
    "There is no mention of this in the provided context.",
)
_FACTORS = (2, 3, 10)
_OFFSETS = (1, 7)


def short_answers(rows: Sequence[DatasetRow], n: int, seed: int, split: str) -> list[DatasetRow]:
    """`n` synthetic short answers (half faithful, half with one swapped word) drawn from `rows`."""
    rng = random.Random(seed)
    usable = [r for r in rows if r.context.strip() and r.context.lstrip()[:1] not in ("{", "[")]
    if n <= 0 or not usable:
        return []
    names = sorted({w.text for r in usable[:300] for k, w in enumerate(words(r.context)) if k > 0 and _is_name(w.text)})
    out: list[DatasetRow] = []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        row = rng.choice(usable)
        candidates = [
            s.text for s in sentences(row.context) if _MIN_WORDS <= len(content_stems(words(s.text))) <= _MAX_WORDS
        ]
        if not candidates:
            continue
        sentence = rng.choice(candidates)
        short_question = 0 < len(row.question.split()) < _MAX_QUESTION_WORDS
        question = row.question if short_question else rng.choice(_GENERIC_QUESTIONS)
        draw = rng.random()
        if draw < 0.05:
            answer, label = rng.choice(_ABSTENTIONS), 0
        elif draw < 0.5:
            answer, label = sentence, 0
        else:
            swapped = _swap_one(sentence, row.context.lower(), names, rng)
            if swapped is None:
                continue
            answer, label = swapped, 1
        if label == 0 and answer in _ABSTENTIONS:
            pass
        elif rng.random() < 0.4:
            answer = rng.choice(_FRAMES).format(answer[:1].lower() + answer[1:] if answer[1:2].islower() else answer)
        out.append(DatasetRow(f"{SOURCE}-{split}-{len(out)}", row.context, question, answer, label, SOURCE, split))
    return out


def _swap_one(sentence: str, context_lower: str, names: Sequence[str], rng: random.Random) -> str | None:
    """The sentence with one number or name replaced by one absent from the context.

    Only figures and names: swapping ordinary words would teach the model that
    every paraphrase ("stands 330 metres high" for "is 330 metres tall") is invented.
    """
    toks = words(sentence)
    numbers = [w for w in toks if w.text[:1].isdigit() and normalise_number(w.text) is not None]
    capitalised = [w for k, w in enumerate(toks) if k > 0 and w.text[:1].isupper() and not w.text.isupper()]
    if numbers and (not capitalised or rng.random() < 0.5):
        target = rng.choice(numbers)
        value = float(normalise_number(target.text) or 0)
        replacement = str(int(value * rng.choice(_FACTORS)) + rng.choice(_OFFSETS))
    elif capitalised:
        target = rng.choice(capitalised)
        replacement = rng.choice(names)
    else:
        return None
    if replacement.lower() in context_lower:
        return None
    return sentence[: target.start] + replacement + sentence[target.end :]


def _is_name(token: str) -> bool:
    return len(token) > 3 and token[:1].isupper() and token[1:].islower() and is_content(token.lower())


def padded(rows: Sequence[DatasetRow], seed: int, max_sentences: int = 20) -> list[DatasetRow]:
    """Each row with its context padded by sentences of *other* rows' contexts that share no content word
    with its answer or question (irrelevant text, as a retriever adds it), before or after the context.

    The label is unchanged: irrelevant sentences neither support nor contradict the answer. Used to check
    that the risk does not move with the amount of irrelevant context.
    """
    rng = random.Random(seed)
    pool = [s.text for r in rows for s in sentences(r.context) if r.context.lstrip()[:1] not in ("{", "[")]
    out: list[DatasetRow] = []
    for row in rows:
        own = _vocabulary(f"{row.answer} {row.question}")
        extra: list[str] = []
        for _ in range(200):
            if len(extra) >= rng.randint(3, max_sentences):
                break
            candidate = rng.choice(pool)
            if candidate not in row.context and not own & _vocabulary(candidate):
                extra.append(candidate)
        padding = " ".join(extra)
        structured = infer_task(row.context, "") == "data2text"
        context = f"{row.context}\n\n{padding}" if structured or rng.random() < 0.5 else f"{padding}\n\n{row.context}"
        out.append(DatasetRow(f"{row.id}+padded", context, row.question, row.answer, row.label, row.source, row.split))
    return out


def _vocabulary(text: str) -> set[str]:
    """Content stems and normalised numbers of `text`."""
    toks = words(text)
    return {s for _, s in content_stems(toks)} | {n for w in toks if (n := normalise_number(w.text)) is not None}
