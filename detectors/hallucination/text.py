"""Light text normalisation: sentences, word stems, numbers, names, negations.

Deliberately small and regex-based so that a 1,000-token context is indexed in
about a millisecond. Stems are crude suffix strips (good enough to match
"grilling" with "grill" and "prices" with "price"); numbers are normalised to
a canonical string ("1,000" -> "1000", "5.0" -> "5", "ten" -> "10").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "NEGATIONS",
    "STOPWORDS",
    "Sentence",
    "Word",
    "content_stems",
    "is_content",
    "normalise_number",
    "sentences",
    "stem",
    "tokens",
    "words",
]

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,]*(?:\.\d+)?%?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    of off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves may might must shall
    s t don doesn didn isn wasn aren weren won wouldn couldn shouldn ll re ve d m o y
    one's it's that's there's they're we're you're i'm let's via per etc e g ie eg
    overall however therefore thus additionally furthermore moreover also including include includes included
    based provide provides provided information mentioned mention mentions according passage passages text
    document documents article summary summarizes summarize described describes describe states stated state
    well many much several various like within without
    given unable answer answers clear seem seems seemingly possible question questions context provided""".split()
)

NEGATIONS = frozenset(
    "no not never none nobody nothing neither nor cannot can't won't don't doesn't didn't isn't wasn't aren't "
    "weren't couldn't shouldn't wouldn't hasn't haven't hadn't without lack lacks unable fail fails failed".split()
)

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "half": "0.5",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "once": "1", "twice": "2",
    "dozen": "12",
}  # fmt: skip

_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ness", "ment", "ly", "ed", "es", "s")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    start: int
    end: int


def words(text: str) -> list[Word]:
    return [Word(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def sentences(text: str) -> list[Sentence]:
    """Split into sentences (and lines), keeping character offsets into `text`."""
    out: list[Sentence] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        _append(out, text, pos, m.start())
        pos = m.end()
    _append(out, text, pos, len(text))
    return out


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if stripped:
        lead = len(chunk) - len(chunk.lstrip())
        out.append(Sentence(stripped, start + lead, start + lead + len(stripped)))


def tokens(text: str) -> list[str]:
    """The word and number tokens of `text`, without offsets (the fast path for contexts)."""
    return _WORD.findall(text)


def is_content(low: str) -> bool:
    return low not in STOPWORDS and (len(low) >= 2 or low.isdigit())


@lru_cache(maxsize=1 << 16)
def stem(token: str) -> str:
    """Lower-case and strip one common English suffix ("grilling" -> "grill")."""
    t = token.lower().strip("'-")
    if t.endswith("'s"):
        t = t[:-2]
    for suffix in _SUFFIXES:
        if len(t) - len(suffix) >= 3 and t.endswith(suffix):
            t = t[: -len(suffix)]
            break
    if len(t) > 3 and t[-1] == t[-2] and t[-1] not in "aeiouls":
        t = t[:-1]  # "grill"/"grilled" keep ll; "stopped" -> "stopp" -> "stop"
    return t.rstrip("e") if len(t) > 4 else t


@lru_cache(maxsize=1 << 14)
def normalise_number(token: str) -> str | None:
    """Canonical form of a numeric token or number word, or None if it is not one."""
    low = token.lower()
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    if not low[:1].isdigit():
        return None
    raw = low.rstrip("%").replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


def content_stems(tokens: list[Word]) -> list[tuple[Word, str]]:
    """The (word, stem) pairs that carry content: no stopwords, no one-letter tokens."""
    out: list[tuple[Word, str]] = []
    for w in tokens:
        low = w.text.lower()
        if not is_content(low):
            continue
        out.append((w, stem(low)))
    return out
