"""Regenerate the shipped price table from LiteLLM's model price list.

    pip download --no-deps litellm==1.108.7 -d /tmp/litellm
    unzip -o /tmp/litellm/litellm-1.108.7-*.whl litellm/model_prices_and_context_window_backup.json -d /tmp/litellm
    python -m genai_sre.telemetry.prices_update /tmp/litellm/litellm/model_prices_and_context_window_backup.json \\
        1.108.7 > genai_sre/resources/prices.yaml

Keeps the chat, responses and embedding models of the OpenAI, Anthropic and
Gemini APIs (LiteLLM's `openai`, `anthropic` and `gemini` providers), converts
USD per token to USD per million tokens, and writes the YAML that
`genai_sre.telemetry.pricing` reads. LiteLLM is MIT-licensed; its list
transcribes the providers' public pricing pages.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

__all__ = ["convert"]

PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}
MODES = {"chat", "responses", "embedding"}
# variants billed differently from the plain model (audio, realtime, search, fine-tunes, ...)
SKIP = re.compile(
    r"(realtime|audio|search|ft:|tts|transcribe|image|vision|computer|codex|deep-research|robotics|lyria|live|"
    r"tuning|thinking|exp|gemma|learnlm)"
)
FIELDS = (
    ("input", "input_cost_per_token"),
    ("output", "output_cost_per_token"),
    ("cache_read", "cache_read_input_token_cost"),
    ("cache_write", "cache_creation_input_token_cost"),
    ("reasoning", "output_cost_per_reasoning_token"),
)


def _per_million(value: float) -> float:
    return round(value * 1_000_000, 6)


def convert(data: dict[str, Any], version: str) -> str:
    lines = [
        "# USD per million tokens: input (all input tokens that are not cache reads or writes), output",
        "# (all output tokens, reasoning included unless `reasoning` is set), cache_read, cache_write.",
        f"# Source: LiteLLM {version}, litellm/model_prices_and_context_window_backup.json (MIT licence,",
        "# Copyright (c) 2023 Berri AI), a transcription of the providers' pricing pages; the OpenAI,",
        "# Anthropic and Gemini API models only. Regenerate: python -m genai_sre.telemetry.prices_update.",
        "# Override or extend it with `telemetry.prices` in the sidecar config.",
        f"source: litellm {version} model_prices_and_context_window_backup.json",
        "models:",
    ]
    seen: set[str] = set()
    rows = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or entry.get("litellm_provider") not in PROVIDERS:
            continue
        if entry.get("mode") not in MODES or SKIP.search(key):
            continue
        name = key.removeprefix("gemini/")
        if "/" in name or name in seen or not isinstance(entry.get("input_cost_per_token"), (int, float)):
            continue
        seen.add(name)
        price = {
            field: _per_million(float(entry[src]))
            for field, src in FIELDS
            if isinstance(entry.get(src), (int, float))
        }
        price.setdefault("output", 0.0)
        body = ", ".join(f"{k}: {v:g}" for k, v in price.items())
        rows.append(f'  "{name}": {{{body}}}  # {PROVIDERS[entry["litellm_provider"]]}')
    return "\n".join([*lines, *sorted(rows)]) + "\n"


if __name__ == "__main__":  # pragma: no cover
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(convert(json.load(fh), sys.argv[2]), end="")
