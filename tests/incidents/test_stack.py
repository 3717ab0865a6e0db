from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genai_sre.config import load_config
from genai_sre.errors import ConfigError
from genai_sre.incidents.stack import build_alerting

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, role: str, alerting: str = "alerting.yaml") -> Path:
    (tmp_path / "alerting.yaml").write_text((ROOT / "configs" / alerting).read_text())
    p = tmp_path / "sidecar.yaml"
    p.write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\nincidents: {{role: {role}}}\n")
    return p


@pytest.mark.parametrize("alerting", ["alerting.yaml", "demo-alerting.yaml"])
def test_primary_builds_everything(tmp_path: Path, alerting: str) -> None:
    stack = build_alerting(load_config(_config(tmp_path, "primary", alerting)), environ={})
    assert stack.router is not None and stack.service is not None
    paths = {r.path for r in stack.routes}  # type: ignore[attr-defined]
    assert {"/admin/incidents", "/admin/alertmanager", "/admin/silences"} <= paths
    asyncio.run(_cycle(stack))
    assert (tmp_path / "data" / "incidents.db").exists()


async def _cycle(stack: object) -> None:
    await stack.start()  # type: ignore[attr-defined]
    await stack.aclose()  # type: ignore[attr-defined]


def test_secondary_with_incidents_receiver_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="incidents"):
        build_alerting(load_config(_config(tmp_path, "secondary")), environ={})


def test_primary_on_postgres_from_the_environment(tmp_path: Path, pg_url: str) -> None:
    config = load_config(_config(tmp_path, "primary"))
    (tmp_path / "data").mkdir()
    old = tmp_path / "data" / "silences.json"  # kept by an earlier version: moved into the store once
    old.write_text('{"silences": [{"id": "s1", "matchers": ["slo=\\"a\\""], "starts_at": 0, "ends_at": 9e9}]}')
    stack = build_alerting(config, environ={"GENAI_SRE_INCIDENTS_URL": pg_url})
    assert stack.service is not None and stack.service.store.engine == "postgresql"
    assert stack.silences is not None and stack.silences.silenced_by({"slo": "a"}) == "s1"
    assert not old.exists() and (tmp_path / "data" / "silences.json.imported").exists()

    async def cycle() -> None:
        await stack.start()
        assert await stack.ready() is None
        assert await stack.prune() == dict.fromkeys(
            ("incident_alerts", "timeline", "receipts", "incidents", "annotations", "silences"), 0
        )
        await stack.aclose()

    asyncio.run(cycle())
    assert not (tmp_path / "data" / "incidents.db").exists()
