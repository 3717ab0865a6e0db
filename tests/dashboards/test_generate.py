"""The generated dashboards: committed copies up to date, well-formed, reading only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from genai_sre.cli import main
from genai_sre.dashboards import DASHBOARDS, GRAFANA_VERSION, build, render, targets
from genai_sre.telemetry.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
COMMITTED = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

# Names a query may read besides the metric table: the generated recordings and Prometheus' own series.
RECORDED = re.compile(r"^(slo:[a-z_]+:[a-z_]+(rate\w+)?|ALERTS|up|vector|sloth_slo_info)$")
FUNCTIONS = {
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "max",
    "min",
    "by",
    "on",
    "group_left",
    "or",
    "and",
    "vector",
    "le",
}


def test_committed_dashboards_are_regenerated_without_diff(tmp_path: Path) -> None:
    assert main(["dashboards", "--out", str(tmp_path)]) == 0
    for name in DASHBOARDS:
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = COMMITTED / name
        assert committed.exists(), f"{committed} missing: run `genai-sre dashboards --out deploy/grafana/dashboards`"
        assert committed.read_text(encoding="utf-8") == fresh, (
            f"{committed} is out of date: run `genai-sre dashboards --out deploy/grafana/dashboards`"
        )
    assert sorted(p.name for p in COMMITTED.glob("*.json")) == sorted(DASHBOARDS)
    assert main(["dashboards", "--out", str(COMMITTED), "--check"]) == 0


def test_check_flag_reports_a_stale_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    main(["dashboards", "--out", str(tmp_path)])
    (tmp_path / "quality.json").write_text("{}\n")
    assert main(["dashboards", "--out", str(tmp_path), "--check"]) == 1
    assert "quality.json" in capsys.readouterr().out


def test_render_is_deterministic() -> None:
    for name in DASHBOARDS:
        assert render(name) == render(name)


def test_dashboard_model_is_well_formed() -> None:
    uids = set()
    for name in DASHBOARDS:
        d = json.loads(render(name))
        assert d["schemaVersion"] == 41 and d["uid"] not in uids and 8 <= len(d["uid"]) <= 40
        uids.add(d["uid"])
        assert "id" not in d or d["id"] is None
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)) and all(i > 0 for i in ids), name
        cells: set[tuple[int, int]] = set()
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']} overlaps another panel"
                    cells.add((x, y))
            if p["type"] != "row":
                assert p["datasource"] == DATASOURCE, (name, p["title"])
                assert p["targets"] and p.get("description"), (name, p["title"])
                assert all(t["datasource"] == DATASOURCE for t in p["targets"]), (name, p["title"])
                refs = [t["refId"] for t in p["targets"]]
                assert all(refs) and len(refs) == len(set(refs)), (name, p["title"])
        source, *variables = d["templating"]["list"]
        assert source["type"] == "datasource" and source["name"] == "datasource" and source["query"] == "prometheus"
        for v in variables:
            assert v["datasource"] == DATASOURCE and v["allValue"] == ".*"
        # nothing names a datasource uid of one particular Grafana
        assert '"uid": "prometheus"' not in render(name), name


def test_queries_read_only_known_metrics() -> None:
    exposed = set()
    for m in METRICS:
        exposed.add(m.exposed_name)
        if m.kind == "histogram":
            exposed |= {f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count"}
    for name in DASHBOARDS:
        for t in targets(build(name)):
            expr = re.sub(r'"[^"]*"', '""', t.expr)  # drop label values
            expr = re.sub(r"\{[^}]*\}", "", expr)  # drop selectors
            expr = re.sub(r"\[[^\]]*\]", "", expr)  # drop range durations
            for word in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
                if word in FUNCTIONS or word in exposed or RECORDED.match(word):
                    continue
                if re.search(rf"by \([^)]*\b{word}\b|on \([^)]*\b{word}\b", t.expr):
                    continue  # a label in a grouping clause
                raise AssertionError(f"{t.dashboard} / {t.panel}: unknown name {word!r} in {t.expr}")


def test_provisioning_points_at_the_committed_dashboards() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (prom,) = ds["datasources"]
    assert prom["uid"] == "prometheus" and prom["type"] == "prometheus" and ds["apiVersion"] == 1
    dash = yaml.safe_load((PROVISIONING / "dashboards" / "genai-sre.yaml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].endswith("/dashboards/genai-sre")


def test_sdk_build_matches_the_grafana_in_the_compose_stack() -> None:
    from importlib.metadata import version

    sdk = version("grafana-foundation-sdk")
    assert sdk.split("!")[-1].startswith(GRAFANA_VERSION + "."), f"SDK {sdk} does not build Grafana {GRAFANA_VERSION}"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    assert image.split(":")[1].startswith(GRAFANA_VERSION + "."), image
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"grafana-foundation-sdk=={sdk}"' in pyproject, "pin the SDK build in pyproject.toml's dashboards extra"
