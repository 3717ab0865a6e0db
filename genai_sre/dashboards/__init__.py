"""Grafana dashboards for genai-sre, generated with the grafana-foundation-sdk.

`DASHBOARDS` maps a file name to the function that builds the dashboard;
`render()` gives its JSON (classic dashboard model, `schemaVersion` 41, for
file provisioning), `write()` writes them all into a folder, and `targets()`
lists every query of a dashboard (used by the tests that run each one against
a real Prometheus). Output is byte-for-byte reproducible: the committed copies
under `deploy/grafana/dashboards/` are checked by regenerating them.

The SDK is an optional dependency (`pip install 'genai-sre[dashboards]'`,
pinned to the build of the Grafana version the deploy files run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_sre.errors import ConfigError

__all__ = ["DASHBOARDS", "GRAFANA_VERSION", "Target", "build", "render", "targets", "write"]

# The Grafana line the pinned SDK build targets; the compose file runs this version or newer.
GRAFANA_VERSION = "11.6"

DASHBOARDS: dict[str, str] = {
    "slo-overview.json": "genai_sre.dashboards.slo",
    "llm-traffic.json": "genai_sre.dashboards.traffic",
    "quality.json": "genai_sre.dashboards.quality",
    "fairness.json": "genai_sre.dashboards.fairness",
    "cost.json": "genai_sre.dashboards.cost",
}


@dataclass(frozen=True)
class Target:
    """One query of a dashboard panel."""

    dashboard: str
    panel: str
    panel_type: str
    ref_id: str
    expr: str
    instant: bool


def _builder(file_name: str) -> Callable[[], Any]:
    import importlib

    try:
        module = importlib.import_module(DASHBOARDS[file_name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("grafana_foundation_sdk"):
            raise ConfigError(
                "generating dashboards needs the grafana-foundation-sdk: "
                "pip install 'genai-sre[dashboards]' (grafana-foundation-sdk==1769699379!11.6.0)"
            ) from exc
        raise
    build_fn: Callable[[], Any] = module.build
    return build_fn


def build(file_name: str) -> dict[str, Any]:
    """The dashboard stored as `file_name`, as a JSON-compatible dict."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    model = _builder(file_name)()
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(model))
    return data


def render(file_name: str) -> str:
    """The dashboard's file content: sorted keys, two-space indent, final newline."""
    return json.dumps(build(file_name), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(out_dir: str | Path) -> list[Path]:
    """Write every dashboard into `out_dir` (created if missing); return the paths written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create dashboard folder {str(out)!r}: {exc.strerror or exc}") from exc
    written = []
    for name in DASHBOARDS:
        path = out / name
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def targets(dashboard: dict[str, Any]) -> list[Target]:
    """Every Prometheus query of a dashboard, rows included."""
    found = []
    for p in _panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            found.append(
                Target(
                    dashboard=str(dashboard.get("uid", "")),
                    panel=str(p.get("title", "")),
                    panel_type=str(p.get("type", "")),
                    ref_id=str(t.get("refId", "")),
                    expr=str(t["expr"]),
                    instant=bool(t.get("instant", False)),
                )
            )
    return found
