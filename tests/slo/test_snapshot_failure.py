"""A snapshot that cannot be written never costs an alert: logged, counted, retried."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.store import EngineState, SLOStore
from tests.slo.test_engine import SLOS, Clock, _healthy_then_outage


class FlakyStore(SLOStore):
    """A real snapshot file whose writes fail while `failing` is set (a locked database, a full disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failing: BaseException | None = None
        self.attempts = 0

    def save(self, state: EngineState) -> None:
        self.attempts += 1
        if self.failing is not None:
            raise self.failing
        super().save(state)


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database is locked"), OSError(28, "No space left")])
def test_alerts_come_out_while_snapshots_fail(
    tmp_path: Path, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    store = FlakyStore(tmp_path)
    failures: list[int] = []
    engine = SLOEngine(SLOS, clock=clock, store=store, snapshot_interval_s=10,
                       on_snapshot_error=lambda: failures.append(1))
    _healthy_then_outage(engine, clock, 120, 0)
    assert engine.evaluate() == [] and store.attempts == 1  # a good snapshot first
    store.failing = error
    _healthy_then_outage(engine, clock, 0, 3)
    with caplog.at_level(logging.WARNING, logger="genai_sre.slo.engine"):
        changes = engine.evaluate()  # the snapshot is due and fails
    assert {(a.labels["severity"], a.status) for a in changes} == {("page", "firing"), ("ticket", "firing")}
    assert store.attempts == 2 and failures == [1] and engine.snapshot_failures == 1
    assert "SLO snapshot to" in caplog.text and "alerts are unaffected" in caplog.text
    clock.t += 15
    assert engine.evaluate() == []  # still firing: not sent twice
    assert store.attempts == 3 and len(failures) == 2  # retried at the next evaluation, counted again
    store.failing = None
    clock.t += 15
    _healthy_then_outage(engine, clock, 0, 1)
    engine.evaluate()
    assert store.attempts == 4 and engine.snapshot_failures == 0  # written again
    engine.close()
    restored = SLOEngine(SLOS, clock=clock, store=SLOStore(tmp_path))
    restored.restore()
    assert restored.status()[0].firing == ("page", "ticket")  # the good snapshot holds the windows ...
    assert restored.evaluate() == []  # ... and the firing state: nothing is paged twice after a restart


def test_a_failing_last_snapshot_still_closes(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path)
    store.failing = sqlite3.OperationalError("disk I/O error")
    engine = SLOEngine(SLOS, clock=Clock(), store=store)
    engine.record("avail", False)
    engine.close()  # logged and counted, not raised
    assert engine.snapshot_failures == 1
