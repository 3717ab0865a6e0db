from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_sre.cli import main
from genai_sre.slo.engine import SLOEngine
from genai_sre.slo.spec import load_slos
from genai_sre.slo.store import SLOStore

REPO = Path(__file__).resolve().parents[2]
SLO_FILE = REPO / "configs" / "slos.yaml"
COMMITTED = REPO / "deploy" / "prometheus" / "rules" / "genai-sre-slos.rules.yml"


def test_committed_rules_are_what_the_generator_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENAI_SRE_RUNBOOK_BASE", raising=False)
    monkeypatch.chdir(REPO)
    assert main(["rules", "--slos", "configs/slos.yaml", "--out", str(tmp_path)]) == 0
    fresh = (tmp_path / "genai-sre-slos.rules.yml").read_text()
    # To refresh: genai-sre rules --slos configs/slos.yaml --out deploy/prometheus/rules
    assert fresh == COMMITTED.read_text()


def test_rules_to_stdout_in_both_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--slos", str(SLO_FILE), "--format", "prometheusrule"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["kind"] == "PrometheusRule" and manifest["apiVersion"] == "monitoring.coreos.com/v1"
    groups = manifest["spec"]["groups"]
    records = {r.get("record") for g in groups for r in g["rules"]}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    assert {"slo:objective:ratio", "slo:period_error_budget_remaining:ratio", "sloth_slo_info"} <= records
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    grounded = [a for a in alerts if a["alert"] == "GroundedAnswersBudgetBurn"]
    assert [a["labels"]["severity"] for a in grounded] == ["ticket"]  # quality: ticket only
    assert {"GenAISRESidecarAbsent", "GenAISRECaptureDrops", "GenAISREDetectorErrors"} <= {a["alert"] for a in alerts}
    assert main(["rules", "--slos", str(SLO_FILE)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["groups"] == groups


def test_slo_status_reads_the_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slos = load_slos(SLO_FILE, environ={})
    assert main(["slo", "status", "--slos", str(SLO_FILE), "--data-dir", str(tmp_path)]) == 0  # not an error
    assert "no SLO snapshot" in capsys.readouterr().out
    engine = SLOEngine(slos, store=SLOStore(tmp_path))
    engine.record("chat-availability", True, count=990)
    engine.record("chat-availability", False, count=10)
    engine.close()
    assert main(["slo", "status", "--slos", str(SLO_FILE), "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("chat-availability"))
    assert "99.5%" in row and "1000" in row and "2.00x" in row and "-100%" in row and row.endswith("ticket")
    assert main(["slo", "status", "--slos", str(SLO_FILE), "--data-dir", str(tmp_path), "--json"]) == 0
    assert '"events_bad": 10' in capsys.readouterr().out
