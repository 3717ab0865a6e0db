from __future__ import annotations

import time
from pathlib import Path

import pytest

from genai_sre.alerting.notification import Notification
from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.cli import main
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import open_store
from tests.alerting.helpers import alert


def _args(tmp_path: Path, store_url: str) -> list[str]:
    return ["--data-dir", str(tmp_path), *(["--store-url", store_url] if store_url else [])]


def test_incidents_cli_round_trip(tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = _args(tmp_path, store_url)
    assert main(["annotate", "deploy", "--model", "gpt-x", "--version", "7", "--at", "1699999000", *d]) == 0
    service = IncidentService(open_store(store_url, tmp_path), lambda: 1_700_000_000.0)
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
    assert main(["postmortem", "1", *d]) == 0  # default: the data directory, whatever the engine
    assert (tmp_path / "postmortems" / "incident-1.md").is_file()
    assert main(["incidents", "show", "9", *d]) == 1


def test_store_url_from_the_environment(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_SRE_INCIDENTS_URL", pg_url)
    assert main(["annotate", "mitigation", "--text", "drained region b", "--data-dir", str(tmp_path)]) == 0
    store = open_store(pg_url, tmp_path)
    assert [a.text for a in store.annotations()] == ["drained region b"]
    store.close()
    assert not (tmp_path / "incidents.db").exists()


def test_silences_cli_reaches_a_running_router(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(store_url, tmp_path)
    live = Silences(time.time, backend=StoreSilences(store))  # what the running primary holds
    d = _args(tmp_path, store_url)
    assert main(["silences", "add", 'slo="chat-latency"', "--for", "2h", "-c", "provider maintenance", *d]) == 0
    sid = capsys.readouterr().out.split()[1]
    live.refresh()  # the router refreshes before each flush
    assert live.silenced_by({"slo": "chat-latency"}) == sid
    assert main(["silences", "list", *d]) == 0
    assert "provider maintenance" in capsys.readouterr().out
    assert main(["silences", "expire", sid, *d]) == 0
    live.refresh()
    assert live.silenced_by({"slo": "chat-latency"}) is None
    assert main(["silences", "expire", sid, *d]) == 1
    assert main(["silences", "add", "bad matcher", "--for", "1h", *d]) == 2
    store.close()


def test_silences_cli_with_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = Silences(time.time, tmp_path / "silences.json")  # an instance without an incident store
    d = ["--data-dir", str(tmp_path), "--file", "silences.json"]
    assert main(["silences", "add", 'slo="chat"', "--for", "1h", *d]) == 0
    sid = capsys.readouterr().out.split()[1]
    live.refresh()
    assert live.silenced_by({"slo": "chat"}) == sid
    assert main(["silences", "expire", sid, *d]) == 0
    live.refresh()
    assert live.silenced_by({"slo": "chat"}) is None
    assert not (tmp_path / "incidents.db").exists()
