"""Which user group an exchange belongs to, per sensitive attribute.

Declared groups come from the exchange labels: the proxy copies configured
headers and OpenAI `metadata` fields into labels named `group.<attribute>`
(`labels["group.gender"] == "female"`), already mapping values outside the
allow-list to `other`. Optionally a group is *inferred* from the prompt with
configured term lists (pronouns, names, nationalities, religions); inferred
groups are tallied under their own attribute name (`gender_inferred`) so they
never mix with what the application declared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from genai_sre.events import Exchange

__all__ = ["GROUP_LABEL_PREFIX", "OTHER", "GroupConfig", "GroupExtractor", "GroupValue"]

GROUP_LABEL_PREFIX = "group."
OTHER = "other"
_VALUE = re.compile(r"^[a-z0-9_.-]{1,40}$")


@dataclass(frozen=True)
class GroupConfig:
    """Group extraction settings (the `groups:` option of the bias detector).

    `attributes`: the declared attributes to monitor; empty means every
    `group.*` label seen. `values`: an allow-list per attribute (anything else
    becomes `other`). `infer`: attribute -> group -> terms matched as whole
    words, case-insensitive, in the last user turn; an exchange whose text
    matches terms of more than one group of an attribute gets no inferred group
    for it. `max_values`: a hard bound on distinct values per attribute.
    """

    attributes: tuple[str, ...] = ()
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    infer: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    max_values: int = 16

    def __post_init__(self) -> None:
        if self.max_values < 2:
            raise ValueError("groups.max_values must be at least 2")
        for attribute, groups in self.infer.items():
            for group, terms in groups.items():
                if not terms:
                    raise ValueError(f"groups.infer.{attribute}.{group}: the term list is empty")


@dataclass(frozen=True, slots=True)
class GroupValue:
    """One attribute's group for one exchange; `inferred` when it came from the prompt text."""

    attribute: str
    value: str
    inferred: bool = False


class GroupExtractor:
    """Maps an exchange to its bounded groups. Not thread-safe (it remembers values seen)."""

    def __init__(self, config: GroupConfig | None = None) -> None:
        self.config = config or GroupConfig()
        self._seen: dict[str, set[str]] = {}
        self._patterns: dict[str, list[tuple[str, re.Pattern[str]]]] = {
            attribute: [(group, _terms_pattern(terms)) for group, terms in sorted(groups.items())]
            for attribute, groups in self.config.infer.items()
        }

    def extract(self, exchange: Exchange) -> tuple[GroupValue, ...]:
        out: list[GroupValue] = []
        wanted = self.config.attributes
        for key, raw in sorted(exchange.labels.items()):
            if not key.startswith(GROUP_LABEL_PREFIX):
                continue
            attribute = key[len(GROUP_LABEL_PREFIX):]
            if not attribute or (wanted and attribute not in wanted):
                continue
            out.append(GroupValue(attribute, self.bound(attribute, raw)))
        if self._patterns:
            text = exchange.question or _last_user_text(exchange)
            for attribute in sorted(self._patterns):
                group = self.infer(attribute, text)
                if group is not None:
                    out.append(GroupValue(f"{attribute}_inferred", group, inferred=True))
        return tuple(out)

    def infer(self, attribute: str, text: str) -> str | None:
        """The one group of `attribute` whose terms occur in `text`, or None (no match, or ambiguous)."""
        hits = [group for group, pattern in self._patterns.get(attribute, ()) if pattern.search(text)]
        return hits[0] if len(hits) == 1 else None

    def bound(self, attribute: str, raw: str) -> str:
        """Normalise a value and keep the set of values per attribute bounded (unknown values -> `other`)."""
        value = raw.strip().lower()
        if not _VALUE.match(value):
            return OTHER
        allowed = self.config.values.get(attribute)
        if allowed is not None:
            return value if value in allowed else OTHER
        seen = self._seen.setdefault(attribute, set())
        if value in seen:
            return value
        if len(seen) >= self.config.max_values - 1:  # one slot stays for `other`
            return OTHER
        seen.add(value)
        return value


def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t.strip()) for t in sorted(terms, key=len, reverse=True) if t.strip())
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def _last_user_text(exchange: Exchange) -> str:
    for message in reversed(exchange.messages):
        if message.role == "user":
            return message.content
    return ""
