"""Redaction of stored and exported text: keys and tokens, emails, bank, card and account numbers, phones.

Applied to every text before it is written to disk (the evidence store) or
exported (OTLP content capture, evaluation explanations). Patterns err on the
side of removing too much: a stored sample is evidence for a human, not
training data.

The built-in patterns, applied in this order (`BUILTIN`):

| name | replaced by | matches |
| --- | --- | --- |
| `api_key` | `[KEY]` | provider key prefixes (`sk-`, `pk_`, `ghp_`, `xoxb-`, `AKIA`, `AIza`, ...) and 12+ characters |
| `credential` | `[KEY]` | `bearer`, `token`, `api key`, `secret`, `password` followed by 8+ key characters |
| `email` | `[EMAIL]` | an e-mail address |
| `iban` | `[IBAN]` | an IBAN (two letters, two digits, 4-character groups) |
| `card` | `[CARD]` | 13 to 19 digits, spaces or dashes allowed between them |
| `phone` | `[PHONE]` | a phone number with separators, optional country and area code |
| `account` | `[ACCOUNT]` | `account`, `acct`, `routing`, `ssn` followed by a number |
| `long_token` | `[KEY]` | any run of 40+ letters, digits, `_` or `-` (hashes, JWT parts, opaque tokens) |

`storage.redaction` in the sidecar config turns built-ins off (`disable:
[phone]`) and adds patterns (`patterns: [{name, pattern, replacement}]`,
Python regular expressions applied after the built-ins).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genai_sre.config import RedactionConfig
from genai_sre.errors import ConfigError

__all__ = ["BUILTIN", "Redactor", "redact"]

BUILTIN: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    # API keys and bearer tokens: provider prefixes, then long opaque strings
    ("api_key", "[KEY]", re.compile(r"\b(?:sk|pk|rk|sess|ghp|gho|xox[abpr]|AKIA|AIza)[-_A-Za-z0-9]{12,}\b")),
    (
        "credential",
        "[KEY]",
        re.compile(r"(?i)\b(?:bearer|token|api[-_ ]?key|secret|password)\s*[:=]?\s*[\"']?[A-Za-z0-9._~+/=-]{8,}"),
    ),
    ("email", "[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("iban", "[IBAN]", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")),
    ("card", "[CARD]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    (
        "phone",
        "[PHONE]",
        re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{2,4}[ .-]\d{2,5}(?![\w.])"),
    ),
    (
        "account",
        "[ACCOUNT]",
        re.compile(r"(?i)\b(?:account|acct|routing|ssn)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*\d[\d -]{5,}\d"),
    ),
    ("long_token", "[KEY]", re.compile(r"\b[A-Za-z0-9_-]{40,}\b")),
)


class Redactor:
    """The built-in patterns less `config.disable`, then `config.patterns`; call it with a text."""

    def __init__(self, config: RedactionConfig | None = None) -> None:
        config = config or RedactionConfig()
        known = {name for name, _, _ in BUILTIN}
        unknown = sorted(set(config.disable) - known)
        if unknown:
            raise ConfigError(
                f"storage.redaction.disable: unknown pattern {unknown[0]!r} (built-in: {', '.join(sorted(known))})"
            )
        patterns: list[tuple[str, str, re.Pattern[str]]] = [b for b in BUILTIN if b[0] not in config.disable]
        for p in config.patterns:
            try:
                compiled = re.compile(p.pattern)
            except re.error as exc:
                raise ConfigError(f"storage.redaction.patterns {p.name!r}: invalid regular expression: {exc}") from exc
            if compiled.match(""):
                raise ConfigError(f"storage.redaction.patterns {p.name!r}: the pattern matches the empty string")
            patterns.append((p.name, p.replacement, compiled))
        self.patterns: Sequence[tuple[str, str, re.Pattern[str]]] = tuple(patterns)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.patterns)

    def __call__(self, text: str) -> str:
        for _, replacement, pattern in self.patterns:
            text = pattern.sub(replacement, text)
        return text


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """Redact with the built-in patterns."""
    return _DEFAULT(text)
