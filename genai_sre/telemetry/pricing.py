"""What an exchange cost: token usage times a price table.

The table shipped with the package (`genai_sre/resources/prices.yaml`, with its
source) lists the OpenAI, Anthropic and Gemini API models in USD per million
tokens; `telemetry.prices` in the sidecar config replaces it with a file, or
adds and overrides models (self-hosted ones included). A model is priced
only by its exact name, or by a dated snapshot of a listed name
(`gpt-4o-2024-08-06`, `claude-sonnet-4-5@20250929`, `...-latest`): anything
else is *unpriced*, never guessed.

Cost of one exchange, with `input_tokens` counting every input token:

    (input - cache_read - cache_write) * input + cache_read * cache_read_price
    + cache_write * cache_write_price + (output - reasoning) * output + reasoning * reasoning_price
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from genai_sre.config import Config, ModelPrice, PricesConfig
from genai_sre.errors import ConfigError
from genai_sre.events import Usage
from genai_sre.schema import Document, build, load_document, read_document

__all__ = ["PriceTable", "load_prices"]

# a dated or aliased snapshot of a listed model: -2024-08-06, -20250929, @20250929, -latest, -001
_SNAPSHOT = re.compile(r"^(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8})|-latest|-\d{3})$")


@dataclass(frozen=True)
class _PriceFile:
    source: str = ""
    models: Mapping[str, ModelPrice] = field(default_factory=dict)


class PriceTable:
    """Model name -> `ModelPrice`; `cost(model, usage)` in USD, or None when the model is unpriced."""

    def __init__(self, models: Mapping[str, ModelPrice], source: str = "") -> None:
        self.models = dict(models)
        self.source = source
        self._by_length = sorted(self.models, key=len, reverse=True)
        self._cache: dict[str, ModelPrice | None] = {}

    def price(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        if model in self._cache:
            return self._cache[model]
        found = self.models.get(model)
        if found is None:
            for name in self._by_length:  # longest first: gpt-4o-mini-2024-07-18 is gpt-4o-mini, not gpt-4o
                if model.startswith(name) and _SNAPSHOT.match(model[len(name):]):
                    found = self.models[name]
                    break
        if len(self._cache) < 4096:
            self._cache[model] = found
        return found

    def cost(self, model: str | None, usage: Usage) -> float | None:
        """USD for `usage` at `model`'s prices; None when the model is unpriced or there is no usage."""
        price = self.price(model)
        if price is None or (usage.input_tokens is None and usage.output_tokens is None):
            return None
        inp = usage.input_tokens or 0
        out = usage.output_tokens or 0
        cache_read = min(usage.cache_read_tokens or 0, inp)
        cache_write = min(usage.cache_write_tokens or 0, inp - cache_read)
        reasoning = min(usage.reasoning_tokens or 0, out)
        total = (
            (inp - cache_read - cache_write) * price.input
            + cache_read * _or(price.cache_read, price.input)
            + cache_write * _or(price.cache_write, price.input)
            + (out - reasoning) * price.output
            + reasoning * _or(price.reasoning, price.output)
        )
        return total / 1_000_000


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _build(doc: Document) -> _PriceFile:
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("models"), dict):
        raise ConfigError(f"{doc.source}: a price file needs a `models:` mapping of model name to prices")
    return build(_PriceFile, doc.data, doc)


def builtin_prices() -> PriceTable:
    """The table shipped with the package."""
    text = resources.files("genai_sre").joinpath("resources/prices.yaml").read_text(encoding="utf-8")
    shipped = _build(load_document(text, "genai_sre/resources/prices.yaml"))
    return PriceTable(shipped.models, shipped.source)


def load_prices(config: Config) -> PriceTable:
    """The price table `telemetry.prices` asks for."""
    cfg: PricesConfig = config.telemetry.prices
    models: dict[str, ModelPrice] = {}
    sources = []
    if cfg.builtin:
        shipped = builtin_prices()
        models.update(shipped.models)
        sources.append(shipped.source)
    if cfg.file:
        path = Path(config.resolve(cfg.file))
        own = _build(read_document(path, "price file"))
        models.update(own.models)
        sources.append(own.source or str(path))
    if cfg.models:
        models.update(cfg.models)
        sources.append("config")
    return PriceTable(models, "; ".join(s for s in sources if s))
