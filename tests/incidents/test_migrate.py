"""`genai-sre incidents migrate`: an SQLite incident store copied into PostgreSQL, compared field by field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_sre.alerting.notification import Notification
from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.cli import main
from genai_sre.events import Annotation
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import DB_NAME, TABLES, open_store
from tests.alerting.helpers import FakeClock, alert

T0 = 1_800_000_000.0


def test_sqlite_to_postgres_field_by_field(tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock(T0)
    service = IncidentService(open_store("", tmp_path), clock)
    service.annotate(Annotation("deploy", T0 - 600, "rollout 7", {"model": "gpt-x", "version": "7"}))
    for g in range(3):
        page = alert(slo=f"slo-{g}", starts_at=T0 + g + 0.123456789, annotations={"burn_started_at": T0 - 300.5})
        body = Notification("am", f"{{}}:{{g={g}}}", "firing", {"slo": f"slo-{g}"}, (page,), T0).to_webhook()
        service.ingest_webhook(json.dumps(body).encode())
        clock.advance(7.25)
    service.ack("1", "looking")
    service.note("1", "rolled back", kind="mitigation")
    service.note("2", "add a canary — ünïcode too", kind="action_item")
    service.resolve("3", "fixed")
    Silences(clock, backend=StoreSilences(service.store)).add(['slo="slo-1"'], ends_at=T0 + 3600, comment="m")
    source_rows = {t: service.store.rows(t) for t in TABLES}
    service.store.close()
    assert all(source_rows[t] for t in TABLES)

    assert main(["incidents", "migrate", "--from", f"sqlite:{tmp_path / DB_NAME}", "--to", pg_url]) == 0
    assert "3 incidents" in capsys.readouterr().out
    target = open_store(pg_url, tmp_path)
    for table in TABLES:
        assert target.rows(table) == source_rows[table], table
    # ids continue after the copied ones; the copy is a working store
    again = IncidentService(target, clock)
    body = Notification("am", "{}:{g=9}", "firing", {}, (alert(slo="slo-9", starts_at=T0 + 99),), T0).to_webhook()
    assert again.ingest_webhook(json.dumps(body).encode()).incident_id == "4"
    assert again.note("4", "x").incident_id == "4"
    target.close()

    # never merges into a store that holds data
    assert main(["incidents", "migrate", "--from", f"sqlite:{tmp_path / DB_NAME}", "--to", pg_url]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["incidents", "migrate", "--from", f"sqlite:{tmp_path / 'nope.db'}", "--to", pg_url]) == 1
