"""Factories shared by the bias tests: `tests.factories.exchange` with the bias tests' defaults."""

from __future__ import annotations

from typing import Any

from genai_sre.events import Exchange
from tests import factories


def make_exchange(i: int = 0, *, answer: str = "Sure, here is a helpful answer.", **overrides: Any) -> Exchange:
    """Exchange number `i` (its id and start time follow from it), ungrounded, with a one-second duration."""
    fields: dict[str, Any] = {
        "id": f"ex-{i}",
        "started_at": 1_700_000_000.0 + i,
        "upstream": "mock",
        "model": None,
        "messages": (),
        "context": (),
        "question": "",
        "duration_s": 1.0,
    }
    fields.update(overrides)
    return factories.exchange(answer=answer, **fields)
