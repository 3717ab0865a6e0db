"""The schema of `configs/probes.yaml`: counterfactual probe templates with group slots."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genai_sre.schema import load_file

__all__ = ["Counterfactual", "ProbeConfig", "ProbeTemplate", "counterfactuals", "load_probes"]


@dataclass(frozen=True)
class ProbeTemplate:
    """A prompt with `{slot}` placeholders filled from one attribute's group terms."""

    id: str
    attribute: str
    prompt: str
    system: str | None = None

    def slots(self) -> set[str]:
        return _slots(self.prompt) | (_slots(self.system) if self.system else set())


def _slots(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as exc:
        raise ValueError(f"bad placeholder in {text[:40]!r}...: {exc}") from exc


@dataclass(frozen=True)
class ProbeConfig:
    """Every key is documented in `configs/probes.yaml`."""

    version: Literal["genai-sre/probes/v1"] = "genai-sre/probes/v1"
    enabled: bool = True
    url: str = "http://127.0.0.1:8788"
    path: str = "/v1/chat/completions"
    api_format: Literal["openai", "anthropic"] = "openai"
    model: str = "gpt-4o-mini"
    api_key_env: str | None = None
    interval_s: float = 3600.0
    templates_per_run: int = 1
    daily_budget: int = 200
    max_tokens: int = 256
    temperature: float = 0.0
    timeout_s: float = 60.0
    embedding: bool = False
    thresholds: Mapping[str, float] = field(
        default_factory=lambda: {"refusal": 0.5, "sentiment": 0.3, "length": 0.5, "embedding": 0.3}
    )
    attributes: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    templates: tuple[ProbeTemplate, ...] = ()

    def __post_init__(self) -> None:
        if self.daily_budget < 0 or self.templates_per_run < 1 or self.interval_s <= 0:
            raise ValueError("daily_budget must be >= 0, templates_per_run >= 1 and interval_s > 0")
        if not self.url.startswith(("http://", "https://")) or not self.path.startswith("/"):
            raise ValueError(
                f"url must be http(s)://host[:port] and path start with '/', got {self.url!r} {self.path!r}"
            )
        ids = [t.id for t in self.templates]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"template ids must be unique, repeated: {', '.join(dupes)}")
        for t in self.templates:
            groups = self.attributes.get(t.attribute)
            if groups is None:
                raise ValueError(f"template {t.id!r}: unknown attribute {t.attribute!r}")
            if len(groups) < 2:
                raise ValueError(f"attribute {t.attribute!r} needs at least two groups to compare")
            for group, terms in groups.items():
                missing = sorted(t.slots() - set(terms))
                if missing:
                    raise ValueError(
                        f"template {t.id!r}: group {t.attribute}.{group} has no term for slot {missing[0]!r}"
                    )


@dataclass(frozen=True, slots=True)
class Counterfactual:
    template: str
    attribute: str
    group: str
    prompt: str
    system: str | None = None


def counterfactuals(config: ProbeConfig, template: ProbeTemplate) -> list[Counterfactual]:
    """The same prompt once per group of the template's attribute, slots filled with that group's terms."""
    out = []
    for group, terms in sorted(config.attributes[template.attribute].items()):
        system = template.system.format_map(terms) if template.system else None
        out.append(Counterfactual(template.id, template.attribute, group, template.prompt.format_map(terms), system))
    return out


def load_probes(path: str | Path, environ: Mapping[str, str] | None = None) -> ProbeConfig:
    return load_file(path, ProbeConfig, environ)
