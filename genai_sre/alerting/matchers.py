"""Label matchers in Alertmanager's syntax: `name="value"`, `!=`, `=~`, `!~`.

Regular expressions are anchored at both ends, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Matcher", "matches_all", "parse_matcher", "parse_matchers"]

Op = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher; ValueError says what is wrong with it."""
    m = _SYNTAX.match(text)
    if not m:
        raise ValueError(f'bad matcher {text!r}: expected name="value" with one of =, !=, =~, !~')
    name, op, quoted, bare = m.groups()
    value = quoted if quoted is not None else bare
    value = re.sub(r"\\(.)", r"\1", value)
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad matcher {text!r}: invalid regular expression: {exc}") from exc
    return Matcher(name, op, value, regex)  # type: ignore[arg-type]


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t) for t in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
