"""Redaction of stored samples: emails, phone numbers, card and account numbers, keys and tokens.

Applied to every text before it is written to disk or exported. Patterns err on
the side of removing too much: a stored sample is evidence for a human, not
training data.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # API keys and bearer tokens: provider prefixes, then long opaque strings
    ("[KEY]", re.compile(r"\b(?:sk|pk|rk|sess|ghp|gho|xox[abpr]|AKIA|AIza)[-_A-Za-z0-9]{12,}\b")),
    (
        "[KEY]",
        re.compile(r"(?i)\b(?:bearer|token|api[-_ ]?key|secret|password)\s*[:=]?\s*[\"']?[A-Za-z0-9._~+/=-]{8,}"),
    ),
    ("[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("[IBAN]", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")),
    ("[CARD]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    (
        "[PHONE]",
        re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{2,4}[ .-]\d{2,5}(?![\w.])"),
    ),
    ("[ACCOUNT]", re.compile(r"(?i)\b(?:account|acct|routing|ssn)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*\d[\d -]{5,}\d")),
    ("[KEY]", re.compile(r"\b[A-Za-z0-9_-]{40,}\b")),
)


def redact(text: str) -> str:
    for label, pattern in _PATTERNS:
        text = pattern.sub(label, text)
    return text
