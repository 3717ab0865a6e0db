from __future__ import annotations

from pathlib import Path

import pytest

from genai_sre.alerting.notification import Notification
from genai_sre.cli import main
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore
from tests.alerting.helpers import alert


def test_incidents_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert main(["annotate", "deploy", "--model", "gpt-x", "--version", "7", "--at", "1699999000", *d]) == 0
    service = IncidentService(IncidentStore.open(tmp_path), lambda: 1_700_000_000.0)
    page = alert(starts_at=1_699_999_990.0, annotations={"burn_started_at": 1_699_999_700})
    service.record(Notification("r", '{}:{slo="chat"}', "firing", {"slo": "chat"}, (page,), 1_700_000_000.0))
    service.store.close()
    capsys.readouterr()

    assert main(["incidents", "list", *d]) == 0
    assert "chat-availability burning (page)" in capsys.readouterr().out
    assert main(["incidents", "ack", "1", "-m", "on it", *d]) == 0
    assert main(["incidents", "note", "1", "rolled back", "--kind", "mitigation", *d]) == 0
    assert main(["incidents", "resolve", "1", *d]) == 0
    capsys.readouterr()
    assert main(["incidents", "show", "1", *d]) == 0
    out = capsys.readouterr().out
    assert "status resolved" in out and "time to detect 4.8m" in out
    tl = out.split("timeline (UTC):")[1]
    assert tl.index("deploy") < tl.index("opened") < tl.index("acknowledged") < tl.index("mitigation")
    assert main(["incidents", "stats", *d]) == 0
    assert "model gpt-x: 1 deploys, change failure rate 100% (failed: 7)" in capsys.readouterr().out
    assert main(["postmortem", "1", "--out", str(tmp_path / "pm.md"), *d]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "pm.md")
    assert (tmp_path / "pm.md").read_text().startswith("# Postmortem:")
    assert main(["incidents", "show", "9", *d]) == 1


def test_silences_cli_reaches_a_running_router(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from genai_sre.alerting.silences import Silences

    live = Silences(time.time, tmp_path / "silences.json")  # what the running sidecar holds
    d = ["--data-dir", str(tmp_path)]
    assert main(["silences", "add", 'slo="chat-latency"', "--for", "2h", "-c", "provider maintenance", *d]) == 0
    sid = capsys.readouterr().out.split()[1]
    assert live.silenced_by({"slo": "chat-latency"}) == sid
    assert main(["silences", "list", *d]) == 0
    assert "provider maintenance" in capsys.readouterr().out
    assert main(["silences", "expire", sid, *d]) == 0
    assert live.silenced_by({"slo": "chat-latency"}) is None
    assert main(["silences", "expire", sid, *d]) == 1
    assert main(["silences", "add", "bad matcher", "--for", "1h", *d]) == 2
