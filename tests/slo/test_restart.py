"""SIGKILL a process that records SLI events and snapshots, restart, and check what survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import parse_slos
from genai_sre.slo.store import SLOStore

SLO_TEXT = "slos:\n  - {name: avail, objective: 99.9, sli: {kind: availability}}\n"
INTERVAL_S = 0.5
PER_TICK = 50  # events per 10 ms tick, 10% bad

CHILD = f"""
import sys, time
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import parse_slos
from genai_sre.slo.store import SLOStore
engine = SLOEngine(parse_slos({SLO_TEXT!r}), store=SLOStore(sys.argv[1]), snapshot_interval_s={INTERVAL_S})
total = 0
while True:
    engine.record("avail", True, count={PER_TICK * 9 // 10})
    engine.record("avail", False, count={PER_TICK // 10})
    total += {PER_TICK}
    engine.evaluate()
    print(total, flush=True)
    time.sleep(0.01)
"""


def test_sigkill_loses_at_most_one_snapshot_interval(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    last = 0
    deadline = time.monotonic() + 20
    started = None
    for line in child.stdout:
        last = int(line)
        started = started or time.monotonic()
        if time.monotonic() - started > 3 * INTERVAL_S or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    for line in child.stdout:  # whatever it printed before dying
        last = int(line)
    child.stdout.close()
    killed_at = time.time()

    engine = SLOEngine(parse_slos(SLO_TEXT), store=SLOStore(tmp_path))
    saved_at = engine.restore()
    assert saved_at is not None and killed_at - saved_at <= INTERVAL_S + 1.0
    st = engine.status()[0]
    restored = st.events_good + st.events_bad
    # The child records about PER_TICK events per 10 ms plus its own overhead: bound the loss by the
    # events it could have recorded in one snapshot interval.
    assert last - INTERVAL_S / 0.01 * PER_TICK <= restored <= last
    assert restored > 0
    assert st.error_ratios["5m"] == 0.1 and st.burn_rates["5m"] == 0.1 / 0.001
    # And it goes on counting from there.
    engine.record("avail", False, count=restored)
    assert engine.status()[0].error_ratios["5m"] == (restored // 10 + restored) / (2 * restored)
