"""Factories shared by the bias tests."""

from __future__ import annotations

from typing import Any

from genai_sre.events import Exchange


def make_exchange(i: int = 0, *, answer: str = "Sure, here is a helpful answer.", **overrides: Any) -> Exchange:
    fields: dict[str, Any] = {
        "id": f"ex-{i}",
        "started_at": 1_700_000_000.0 + i,
        "provider": "openai",
        "operation": "chat",
        "route": "/v1/chat/completions",
        "upstream": "mock",
        "status": 200,
        "stream": False,
        "answer": answer,
        "duration_s": 1.0,
    }
    fields.update(overrides)
    return Exchange(**fields)
