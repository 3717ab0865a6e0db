from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genai_sre.alerting.config import load_alerting_config
from genai_sre.alerting.router import AlertRouter
from genai_sre.errors import ConfigError, PluginLoadError

ROOT = Path(__file__).resolve().parents[2]


class Sink:
    async def send(self, notification: object) -> None:
        return None


def test_shipped_config_loads_and_builds(tmp_path: Path) -> None:
    cfg = load_alerting_config(ROOT / "configs" / "alerting.yaml")
    assert cfg.route.routes[0].continue_ is True
    assert [r.name for r in cfg.receivers] == ["stdout", "alerts-file", "incidents"]

    async def main() -> None:
        router = AlertRouter.from_config(cfg, data_dir=tmp_path, incidents=Sink())  # type: ignore[arg-type]
        await router.start()
        await router.aclose()

    asyncio.run(main())


def test_incidents_receiver_needs_the_service(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="incidents"):
        AlertRouter.from_config(ROOT / "configs" / "alerting.yaml", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("route: {receiver: nope}\nreceivers: [{name: a, type: stdout}]", "not defined"),
        ("route: {receiver: a, matchers: ['x=\"y\"']}\nreceivers: [{name: a, type: stdout}]", "root route"),
        (
            "route:\n  receiver: a\n  routes:\n    - matchers: ['bad matcher']\nreceivers: [{name: a, type: stdout}]",
            ":4: route.routes[0]",
        ),
        ("route: {receiver: a, group_wait: 3}\nreceivers: [{name: a, type: stdout}]", "unknown key 'group_wait'"),
    ],
)
def test_errors_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "alerting.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_alerting_config(p)


def test_secret_env_missing_fails_at_build(tmp_path: Path) -> None:
    p = tmp_path / "alerting.yaml"
    p.write_text("route: {receiver: pd}\nreceivers: [{name: pd, type: pagerduty, options: {routing_key_env: PD}}]")
    with pytest.raises(PluginLoadError, match="'PD' is not set"):
        AlertRouter.from_config(p, data_dir=tmp_path, environ={})
