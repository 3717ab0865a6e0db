"""deploy/kubernetes: schema-valid manifests, the sidecar pattern, probes, security, monitoring, rules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from genai_sre.slo.rules import render
from genai_sre.slo.spec import load_slos
from tests.deploy.files import KUBE, ROOT, kube, kube_documents, tool
from tests.servers import promtool

CRDS = {"ServiceMonitor", "PrometheusRule"}  # validated below by structure and by promtool
RULE_FILE = KUBE / "genai-sre-slos.prometheusrule.yaml"


def test_core_manifests_pass_kubernetes_validate() -> None:
    kv = tool("kubernetes-validate", "pip install kubernetes-validate (it is in the project's test extra)")
    core = sorted({str(p) for p, d in kube_documents() if d["kind"] not in CRDS | {"Kustomization"}})
    proc = subprocess.run([kv, "--strict", *core], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kinds = {d["kind"] for p, d in kube_documents() if str(p) in core}
    assert kinds == {"Namespace", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"}
    assert proc.stdout.count(" passed for resource ") == sum(1 for p, _ in kube_documents() if str(p) in core)


def test_kustomization_lists_every_manifest() -> None:
    k = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k["resources"]) == files


def test_sidecar_next_to_the_application_with_probes_resources_and_security() -> None:
    dep = kube("Deployment", "llm-app")
    pod = dep["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    (app,) = pod["containers"]
    # a native sidecar: started before the application, stopped after it (its last calls still get through)
    (sidecar,) = pod["initContainers"]
    assert sidecar["name"] == "genai-sre" and sidecar["restartPolicy"] == "Always"
    assert {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8788/v1"} in app["env"]
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {"proxy": 8788, "admin": 9464}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert pod["automountServiceAccountToken"] is False
    for c in [*pod["containers"], *pod["initContainers"]]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int), c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        for key in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][key]), c["name"]
    mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
    assert {"/etc/genai-sre", "/var/lib/genai-sre", "/tmp"} <= mounts
    # The Dockerfile's user and the pod's agree.
    assert sidecar["securityContext"]["runAsUser"] == 10001


def test_service_monitor_scrapes_the_sidecars_admin_port() -> None:
    sm = kube("ServiceMonitor")
    svc = kube("Service", "genai-sre")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    (port,) = [p for p in svc["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert port["targetPort"] == "admin" and endpoint["path"] == "/metrics"
    pod_labels = kube("Deployment", "llm-app")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    slos = yaml.safe_load((ROOT / "configs" / "slos.yaml").read_text())
    assert svc["metadata"]["name"] == slos["self_monitoring"]["job"], "the operator names the job after the Service"


def test_prometheusrule_is_the_generated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENAI_SRE_RUNBOOK_BASE", raising=False)
    fresh = render(load_slos(ROOT / "configs" / "slos.yaml"), "prometheusrule", "configs/slos.yaml")
    assert RULE_FILE.read_text() == fresh, (
        f"{RULE_FILE.name} is out of date: genai-sre rules --format prometheusrule --out deploy/kubernetes"
    )


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    rule = yaml.safe_load(RULE_FILE.read_text())
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = tmp_path / "groups.yml"
    groups.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS" in promtool("check", "rules", groups)


def test_incident_primaries_share_postgres_from_a_secret(tmp_path: Path) -> None:
    from genai_sre.cli import main
    from genai_sre.config import load_config

    dep = kube("Deployment", "genai-sre-primary")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["GENAI_SRE_INCIDENTS_URL"] == {"name": "genai-sre-incidents-db", "key": "url"}
    assert env["GENAI_SRE_ADMIN_TOKEN"] == {"name": "genai-sre-admin", "key": "token"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz/incidents", "port": "admin"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"]
    pdb = kube("PodDisruptionBudget", "genai-sre-primary")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    svc = kube("Service", "genai-sre-primary")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (cm_volume,) = [v for v in pod["volumes"] if "configMap" in v]
    data = kube("ConfigMap", cm_volume["configMap"]["name"])["data"]
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(data["config.yaml"])
    cfg = load_config(cfg_path, environ={})
    assert cfg.incidents.role == "primary" and cfg.incidents.store_url == "" and cfg.slo.file is None
    assert cfg.admin.token_env == "GENAI_SRE_ADMIN_TOKEN"
    assert main(["check-config", "--config", str(cfg_path)]) == 0
    am = (ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text()
    assert "http://genai-sre-primary:9464/admin/alertmanager" in am
