"""The demo runs headless in a short mode and reports real traffic and detector results."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_demo_headless_short_mode(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "genai_sre", "demo", "--headless", "--duration", "12", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    sent = int(re.search(r"requests sent (\d+)", text).group(1))  # type: ignore[union-attr]
    scored = int(re.search(r"exchanges scored (\d+)", text).group(1))  # type: ignore[union-attr]
    assert sent > 20 and scored > 20
    assert re.search(r"latency\s+│ ttft\s+│ ok\s+│ \d+", text)
    assert re.search(r"hallucination\s+│ hallucination_risk", text)  # the risk detector scored answers
    assert (tmp_path / "evidence.db").exists() and (tmp_path / "slo.db").exists()
    # The simulated answers read like answers: never the system prompt's instruction.
    with sqlite3.connect(tmp_path / "evidence.db") as db:
        answers = [row[0] for row in db.execute("SELECT answer FROM samples WHERE answer IS NOT NULL AND answer != ''")]
    assert answers
    assert not [a for a in answers if "Answer only" in a or "these documents" in a]
