"""The evidence store never loses an exchange silently: drops are counted by reason; retention runs on a timer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from genai_sre.config import StorageConfig
from genai_sre.events import Evaluation, Finding
from genai_sre.storage.samples import SampleStore
from tests.factories import evaluation


def _flagged(i: int, at: float) -> Evaluation:
    flagged = Finding(detector="hallucination", name="hallucination_risk", label="flagged", score=0.9)
    return evaluation((flagged,), id=f"x{i}", started_at=at)


def test_queue_full_and_failed_writes_are_counted(tmp_path: Path) -> None:
    drops: dict[str, int] = {}
    store = SampleStore(tmp_path, StorageConfig(), queue_size=2,
                        on_dropped=lambda reason, n: drops.__setitem__(reason, drops.get(reason, 0) + n))
    gate = threading.Event()
    real_write = store._write

    def blocked(rows):  # type: ignore[no-untyped-def]
        gate.wait(5)
        raise OSError("disk full")

    store._write = blocked  # type: ignore[method-assign]
    now = time.time()
    for i in range(10):
        store.consume(_flagged(i, now))
    gate.set()
    store.flush()
    store._write = real_write  # type: ignore[method-assign]
    store.close()
    assert drops.get("queue_full", 0) >= 7
    assert drops.get("write_failed", 0) >= 1
    assert drops["queue_full"] + drops["write_failed"] == 10


def test_retention_runs_on_a_timer_without_writes(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, StorageConfig(retention_days=1), retention_every_s=0.2)
    old = time.time() - 3 * 86400
    store._write([
        {"id": "old", "at": old, "route": "r", "model": "m", "upstream": "u", "status": 200, "error": None,
         "ttft_s": None, "duration_s": None, "bad": 1, "labels": "{}", "findings": "[]", "question": None,
         "answer": None, "context": None}
    ])
    assert store.count(0, time.time()) == 1
    deadline = time.monotonic() + 5
    while store.count(0, time.time()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.count(0, time.time()) == 0
    store.close()


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
