"""Per-answer features: lexical support, contradiction cues, answer shape, task shape.

`extract(context, question, answer)` returns one `FeatureRow`: a fixed-order
vector (`FEATURE_NAMES`) plus the answer sentences that look unsupported, which
become the `evidence` spans of a finding. Only the request and the response are
read; nothing here knows about datasets.

The grounding is the context plus the question (a summarisation request often
carries its document in the user turn). Context indexes are cached by hash, so
many answers against one retrieved context pay for it once.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from detectors.hallucination.text import (
    NEGATIONS,
    Sentence,
    content_stems,
    is_content,
    normalise_number,
    sentences,
    stem,
    tokens,
    words,
)

__all__ = [
    "FEATURE_NAMES",
    "TASKS",
    "ClaimSpan",
    "ContextIndex",
    "FeatureRow",
    "extract",
    "index_context",
    "infer_task",
]

Task = Literal["qa", "short", "summary", "brief", "data2text"]
TASKS: tuple[Task, ...] = ("qa", "short", "summary", "brief", "data2text")

FEATURE_NAMES: tuple[str, ...] = (
    "unsupported_share",
    "unsupported_sentence_max",
    "unsupported_sentence_share",
    "unsupported_count_log",
    "novel_bigram_share",
    "unsupported_numbers_log",
    "unsupported_number_share",
    "unsupported_names_log",
    "number_mismatch_log",
    "negation_mismatch_log",
    "best_match_mean",
    "best_match_min",
    "local_unsupported_mean",
    "local_unsupported_max",
    "answer_words_log",
    "question_coverage",
    "task_qa",
    "task_short",
    "task_summary",
    "task_brief",
    "task_data2text",
)

_SUMMARY_CUE = re.compile(r"\b(summar|tl;?dr|recap|brief overview|key points|in \d+ words)", re.IGNORECASE)
# A JSON object or array: `{"` or `[{`, not "[1] As reported..." or "[Email Address] ...".
_STRUCTURED = re.compile(r'\s*(?:\{\s*["}]|\[\s*[\[{"])')
_CLAIM_THRESHOLD = 0.34
_BRIEF_WORDS = 80
_SHORT_ANSWER_WORDS = 40
_CACHE_SIZE = 256
# Sentences with fewer content words (list headers, "Yes.") get no sentence-level features, unless
# no sentence of the answer has that many: then "It opened in 1925." is the claim.
_MIN_CLAIM_WORDS = 3


@dataclass(frozen=True, slots=True)
class ClaimSpan:
    """An answer sentence with weak support, and the words that lack it."""

    start: int
    end: int
    text: str
    unsupported: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeatureRow:
    values: tuple[float, ...]
    claims: tuple[ClaimSpan, ...]
    task: Task
    content_words: int


@dataclass(frozen=True, slots=True)
class _IndexedSentence:
    stems: frozenset[str]
    numbers: frozenset[str]
    negated: bool


@dataclass(frozen=True, slots=True)
class ContextIndex:
    stems: frozenset[str]
    lower: frozenset[str]
    numbers: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    sentences: tuple[_IndexedSentence, ...]
    postings: dict[str, tuple[int, ...]]
    n_words: int


_cache: OrderedDict[tuple[int, int], ContextIndex] = OrderedDict()


def infer_task(context: str, question: str, answer: str | None = None) -> Task:
    """The exchange's shape, read from the request and the answer text only.

    `data2text` when the context (or the question) is a JSON object or array.

    A summary of at most `_BRIEF_WORDS` words is a `brief` (a one-paragraph
    gist), scored by its own weights: short gists and long summaries fail in
    different ways. Likewise an answer to a question in at most
    `_SHORT_ANSWER_WORDS` words is `short`: one invented figure or name is most
    of what such an answer asserts.
    """
    if _STRUCTURED.match(context) or _STRUCTURED.match(question):
        return "data2text"
    if not question.strip() or _SUMMARY_CUE.search(question[:300]):
        return "brief" if answer is not None and len(answer.split()) <= _BRIEF_WORDS else "summary"
    return "short" if answer is not None and len(answer.split()) <= _SHORT_ANSWER_WORDS else "qa"


def index_context(text: str) -> ContextIndex:
    # Python's own (randomised, 64-bit) string hash plus the length: no hashlib, because hashlib
    # releases the GIL on large inputs, and a worker thread that keeps releasing and retaking
    # the GIL starves the event loop thread of it (the loop never gets to force a switch).
    key = (hash(text), len(text))
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    built = _build_index(text)
    _cache[key] = built
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return built


def _build_index(text: str) -> ContextIndex:
    all_lowers: list[str] = []
    stems_all: set[str] = set()
    numbers: set[str] = set()
    indexed: list[_IndexedSentence] = []
    postings: dict[str, list[int]] = {}
    for i, sent in enumerate(sentences(text)):
        lowers = [t.lower() for t in tokens(sent.text)]
        all_lowers.extend(lowers)
        st = frozenset(stem(low) for low in lowers if is_content(low))
        nums = frozenset(n for low in lowers if (n := normalise_number(low)) is not None)
        neg = any(low in NEGATIONS or low.endswith("n't") for low in lowers)
        indexed.append(_IndexedSentence(st, nums, neg))
        stems_all |= st
        numbers |= nums
        for s in st:
            postings.setdefault(s, []).append(i)
    return ContextIndex(
        stems=frozenset(stems_all),
        lower=frozenset(all_lowers),
        numbers=frozenset(numbers),
        bigrams=frozenset(zip(all_lowers, all_lowers[1:], strict=False)),
        sentences=tuple(indexed),
        postings={k: tuple(v) for k, v in postings.items()},
        n_words=len(all_lowers),
    )


def _best_sentence(index: ContextIndex, stems: set[str]) -> tuple[_IndexedSentence | None, float, float]:
    """The best-matching context sentence, its overlap, and the share of `stems` outside the best two."""
    counts: dict[int, int] = {}
    for s in stems:
        for i in index.postings.get(s, ()):
            counts[i] = counts.get(i, 0) + 1
    if not counts or not stems:
        return None, 0.0, 1.0
    ranked = sorted(counts, key=lambda i: (-counts[i], i))[:2]
    local = set().union(*(index.sentences[i].stems for i in ranked))
    return index.sentences[ranked[0]], counts[ranked[0]] / len(stems), len(stems - local) / len(stems)


def extract(context: str, question: str, answer: str) -> FeatureRow:
    """Compute the feature vector of one answer against its grounding."""
    task = infer_task(context, question, answer)
    grounding = f"{context}\n\n{question}" if question else context
    index = index_context(grounding)
    q_stems = {s for _, s in content_stems(words(question))}

    total = unsupported = 0
    unsupported_names = unsupported_numbers = answer_numbers = 0
    number_mismatch = negation_mismatch = 0
    sentence_shares: list[float] = []
    best_matches: list[float] = []
    local_missing: list[float] = []
    claims: list[ClaimSpan] = []
    a_words = words(answer)
    answer_sentences = sentences(answer)
    min_claim = _MIN_CLAIM_WORDS if any(_reaches(s.text, _MIN_CLAIM_WORDS) for s in answer_sentences) else 1
    for sent in answer_sentences:
        toks = words(sent.text)
        pairs = content_stems(toks)
        missing: list[str] = []
        sent_numbers: set[str] = set()
        for k, (w, s) in enumerate(pairs):
            num = normalise_number(w.text)
            if num is not None and w.text[:1].isdigit():
                answer_numbers += 1
                sent_numbers.add(num)
                if num not in index.numbers:
                    unsupported_numbers += 1
                    missing.append(w.text)
                continue
            total += 1
            if s in index.stems or w.text.lower() in index.lower:
                continue
            unsupported += 1
            missing.append(w.text)
            if w.text[:1].isupper() and (k > 0 or toks[0] is not w):
                unsupported_names += 1
        stems = {s for _, s in pairs}
        if len(pairs) >= min_claim:
            share = len(missing) / len(pairs)
            sentence_shares.append(share)
            best, overlap, outside = _best_sentence(index, stems)
            best_matches.append(overlap)
            local_missing.append(outside)
            if best is not None and overlap >= 0.5:
                if sent_numbers and best.numbers and sent_numbers - best.numbers:
                    number_mismatch += 1
                negated = any(w.text.lower() in NEGATIONS or w.text.lower().endswith("n't") for w in toks)
                if negated != best.negated:
                    negation_mismatch += 1
            if share >= _CLAIM_THRESHOLD or any(m[:1].isdigit() or m[:1].isupper() for m in missing):
                claims.append(_claim(sent, missing))

    bigrams = list(zip([w.text.lower() for w in a_words], [w.text.lower() for w in a_words[1:]], strict=False))
    novel_bigrams = sum(1 for b in bigrams if b not in index.bigrams) / len(bigrams) if bigrams else 0.0
    coverage = len(q_stems & {s for _, s in content_stems(a_words)}) / len(q_stems) if q_stems else 0.0
    n_answer = len(a_words)
    values = (
        unsupported / total if total else 0.0,
        max(sentence_shares, default=0.0),
        sum(1 for s in sentence_shares if s >= _CLAIM_THRESHOLD) / len(sentence_shares) if sentence_shares else 0.0,
        math.log1p(unsupported),
        novel_bigrams,
        math.log1p(unsupported_numbers),
        unsupported_numbers / answer_numbers if answer_numbers else 0.0,
        math.log1p(unsupported_names),
        math.log1p(number_mismatch),
        math.log1p(negation_mismatch),
        sum(best_matches) / len(best_matches) if best_matches else 1.0,
        min(best_matches, default=1.0),
        sum(local_missing) / len(local_missing) if local_missing else 0.0,
        max(local_missing, default=0.0),
        math.log1p(n_answer),
        coverage,
        1.0 if task == "qa" else 0.0,
        1.0 if task == "short" else 0.0,
        1.0 if task == "summary" else 0.0,
        1.0 if task == "brief" else 0.0,
        1.0 if task == "data2text" else 0.0,
    )
    return FeatureRow(values=values, claims=tuple(claims), task=task, content_words=total)


def _reaches(text: str, n: int) -> bool:
    return len(content_stems(words(text))) >= n


def _claim(sent: Sentence, missing: list[str]) -> ClaimSpan:
    seen: dict[str, None] = {}
    for m in missing:
        seen.setdefault(m, None)
    return ClaimSpan(sent.start, sent.end, sent.text, tuple(seen)[:8])
