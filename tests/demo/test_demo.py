"""The demo as `make demo` runs it, headless, from an empty directory.

Traffic, detector findings, the three alerts of the demo's story (grounded answers, fairness,
availability) each in its phase with its evidence, and a postmortem draft whose facts are the alert's.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`genai-sre demo --headless` in `cwd`, an empty directory: the bundled settings are found wherever it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_SRE_")}
    return subprocess.run(
        [sys.executable, "-m", "genai_sre", "demo", "--headless", *args],
        cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=timeout,
    )


def _alert_rows(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(slo, severity) -> (when it fired with the upstream phase, evidence), from the summary's table of alerts."""
    table = text.split("burn-rate alerts fired during the run")[1].split("incidents opened")[0]
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    key: tuple[str, str] | None = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")] if line.startswith("│") else []
        if len(cells) == 5 and cells[0]:  # SLO, severity, fired (phase), burn rate, evidence
            key = (cells[0], cells[1])
            rows[key] = (cells[2], cells[4])
        elif len(cells) == 5 and key is not None:
            fired, evidence = rows[key]
            rows[key] = (f"{fired} {cells[2]}".strip(), f"{evidence} {cells[4]}")
    return rows


@pytest.mark.integration
@pytest.mark.slow
def test_demo_default_duration_pages_with_evidence_and_a_true_postmortem(tmp_path: Path) -> None:
    """The demo as `make demo` runs it (default duration), from an empty directory."""
    out = _demo(tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    sent = int(re.search(r"requests sent (\d+)", text).group(1))  # type: ignore[union-attr]
    scored = int(re.search(r"exchanges scored (\d+)", text).group(1))  # type: ignore[union-attr]
    assert sent > 1000 and scored > 0.95 * sent
    assert re.search(r"latency\s+│ ttft\s+│ ok\s+│ \d+", text)
    assert re.search(r"hallucination\s+│ hallucination_risk\s+│ flagged\s+│ \d+", text)
    rows = _alert_rows(text)
    fired, availability = rows.get(("chat-availability", "page"), ("", ""))
    assert "(outage)" in fired and re.search(r"\d+ bad events: status=503 x\d+", availability), rows
    fired, grounded = rows.get(("grounded-answers", "ticket"), ("", ""))
    assert "(inventing-facts)" in fired, rows
    assert re.search(r"\d+ bad events; worst [01]\.\d\d \(\w+\): risk [01]\.\d\d", grounded), rows
    # The biased-refusals phase fires the fairness alert before it ends, with the gap and its interval.
    fired, fairness = rows.get(("fairness", "ticket"), rows.get(("fairness", "page"), ("", "")))
    assert "(biased-refusals)" in fired, rows
    gap = re.search(r"refusal gap (0\.\d\d) \[(-?0\.\d\d), 0\.\d\d\] between group_b and group_a "
                    r"\(n \d+/\d+, units of evidence \d+/\d+\)", fairness)  # fmt: skip
    assert gap and float(gap.group(1)) > 0.2 and float(gap.group(2)) > 0, rows
    data = Path(re.search(r"data directory \(SQLite: evidence, SLO state, incidents\): (\S+)",  # type: ignore[union-attr]
                          text).group(1))
    data = data if data.is_absolute() else tmp_path / data
    assert data.parent == tmp_path / ".genai-sre"  # in the directory it ran from
    assert (data / "evidence.db").exists() and (data / "slo.db").exists()
    page = next(
        a
        for line in (data / "alerts.jsonl").read_text().splitlines()
        for a in json.loads(line)["alerts"]
        if a["labels"]["slo"] == "chat-availability" and a["labels"]["severity"] == "page" and a["status"] == "firing"
    )
    draft = (data / "postmortems" / "incident-1.md").read_text()
    assert draft.startswith("# Postmortem: demo chat-availability")
    burn = float(page["annotations"]["burn_rate"])
    people = f"{burn:,.0f}x" if burn >= 100 else f"{burn:.1f}x"
    assert f"Burn rate at page time: {people} over the 20s window" in draft
    assert f"burn rate at page time {people}, peak " in draft
    impact = draft.split("## Impact")[1].split("## Detection")[0]
    assert not re.search(r"\d\.\d{3,}", impact), impact
    samples = draft.split("Redacted samples of the bad events of `chat-availability`:")[1]
    statuses = re.findall(r" (status=\d+|status=error \([a-z_ ]+\)) model=", samples)
    assert len(statuses) == 5 and all(s == "status=503" or s.startswith("status=error (") for s in statuses), statuses
    # The simulated answers read like answers: never the system prompt's instruction.
    with sqlite3.connect(data / "evidence.db") as db:
        answers = [row[0] for row in db.execute("SELECT answer FROM samples WHERE answer IS NOT NULL AND answer != ''")]
    assert answers
    assert not [a for a in answers if "Answer only" in a or "these documents" in a]
