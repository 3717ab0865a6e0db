"""Answers the simulated LLM gives: faithful to the supplied context, inventing facts, or refusing."""

from __future__ import annotations

import random
import re

__all__ = ["NO_ANSWER", "REFUSAL", "faithful_answer", "invented_answer"]

REFUSAL = "I'm sorry, but I can't help with that request."

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z0-9']+")
_STOP = frozenset(
    "a an the of to in on at for and or is are was were be been by with what which who when where how why "
    "does do did it its this that these those from as about into can could should would will".split()
)
_INVENTED = (
    "It was founded in {year} by Dr. {name}, who still leads it today.",
    "According to a {year} study, about {pct}% of cases show this effect.",
    "The original plan was approved by {name} in {year} for a budget of {money} million dollars.",
    "{name} confirmed in {year} that the figure had doubled to {pct} percent.",
)
_NAMES = ("Helena Marquez", "Tobias Lindqvist", "Amara Okafor", "Kenji Watanabe", "Priya Raman", "Viktor Horvath")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 20 and not s.strip().endswith("?")]


def _words(text: str) -> set[str]:
    """Content words, lower case, a plural 's' dropped ("returns" matches "return")."""
    words = (w.lower() for w in _WORD.findall(text))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOP}


NO_ANSWER = "Based on the information provided, I don't have enough detail to answer that."
_CONTINUES = re.compile(r"^(?:It|Its|It's|This|These|They|Their|She|Her|He|His|The (?:same|latter|former))\b")


def faithful_answer(context: str, question: str, rng: random.Random, max_sentences: int = 3) -> str:
    """Sentences of the context that answer the question, in context order.

    The sentences that share words with the question (the most first, at most `max_sentences`),
    plus the one right after the best of them when it continues it ("It stretches for ..."). A
    sentence sharing nothing with the question is never picked, so instructions in the system
    prompt ("Answer only from these documents.") do not end up in the answer; when nothing
    matches (or there is no context), the answer says it lacks the detail.
    """
    sents = _sentences(context)
    q = _words(question)
    overlap = [len(_words(s) & q) for s in sents]
    ranked = sorted((i for i in range(len(sents)) if overlap[i] > 0), key=lambda i: (-overlap[i], i))
    if not ranked:
        return NO_ANSWER
    pick = set(ranked[:max_sentences])
    best = ranked[0]
    if best + 1 < len(sents) and _CONTINUES.match(sents[best + 1]) and len(pick) < max_sentences + 1:
        pick.add(best + 1)
    return " ".join(sents[i] for i in sorted(pick))


def invented_answer(context: str, question: str, rng: random.Random) -> str:
    """A faithful answer with a number changed and an invented, unsupported claim added."""
    base = faithful_answer(context, question, rng, max_sentences=2)

    def bump(m: re.Match[str]) -> str:
        n = int(m.group(0))
        return str(n + rng.choice((3, 7, 11, 20)) if n < 1900 else n - rng.randint(5, 40))

    changed = re.sub(r"\b\d{1,4}\b", bump, base, count=1)
    claim = rng.choice(_INVENTED).format(
        year=rng.randint(1950, 2019), name=rng.choice(_NAMES), pct=rng.randint(12, 87), money=rng.randint(2, 900)
    )
    return f"{changed} {claim}"
