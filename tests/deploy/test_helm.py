"""deploy/helm/genai-sre: linted and rendered by Helm's own engine, then validated like the kustomize manifests.

No `helm` binary installs from PyPI, Debian or npm here; `helm-python-sdk` (PyPI, Apache-2.0) bundles
Helm's Go SDK (v4) as a shared library, so `helm lint --strict` and `helm template` run through Helm's
real chart loader, template engine and linter. The rendered manifests of several value sets then go
through `kubernetes-validate --strict`, checkov, `promtool check rules`, the project's own command-line
parser and config loader, and structural checks of the sidecar, the primary and the monitoring objects.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_sre.cli import main
from genai_sre.config import load_config
from tests.deploy.files import DEPLOY, ROOT, tool
from tests.deploy.test_cmdlines import parse
from tests.servers import promtool

CHART = DEPLOY / "helm" / "genai-sre"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CRDS = {"ServiceMonitor", "PrometheusRule"}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "native-sidecar": {"sidecar": {"nativeSidecar": True}},
    "postgres": {"primary": {"incidentsUrl": {"existingSecret": "incidents-db", "key": "url"}, "replicas": 2}},
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "own-app": {"app": {"enabled": False}, "networkPolicy": {"enabled": False}},
    "attribution": {
        "sidecar": {
            "labels": {"tenants": ["acme", "globex"], "apps": ["shop"]},
            "telemetry": {"prices": {"models": {"llama-3-70b": {"input": 0.5, "output": 0.5}}}},
            "extraConfig": {"pipeline": {"cpu_budget": 0.3}},
        }
    },
}


def helm() -> Any:
    try:
        import helm_python
    except ImportError as exc:  # never skip: the chart must be checked
        raise AssertionError("helm-python-sdk is not installed (it is in the project's test extra)") from exc
    return helm_python


class _Strict(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (Kubernetes would keep one silently)."""


def _mapping(loader: _Strict, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"duplicate keys {dupes} at line {node.start_mark.line + 1}"
    return loader.construct_mapping(node, deep=deep)


_Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = helm().Chart.load(str(CHART)).render(values, name="genai-sre", namespace="llm-app", is_install=True)
    docs = []
    for text in out.values():
        docs += [d for d in yaml.load_all(text, Loader=_Strict) if d]
    return docs


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in VARIANTS.items()}


def test_chart_lints_strictly_with_every_value_set() -> None:
    for name, values in VARIANTS.items():
        report = helm().lint(str(CHART), values, strict=True, kube_version="v1.30.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, (name, problems)


def test_rendered_core_manifests_pass_kubernetes_validate(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    kv = tool("kubernetes-validate", "pip install kubernetes-validate (it is in the project's test extra)")
    files = []
    for name, docs in rendered.items():
        for i, doc in enumerate(d for d in docs if d["kind"] not in CRDS):
            path = tmp_path / f"{name}-{i}-{doc['kind']}.yaml"
            path.write_text(yaml.safe_dump(doc))
            files.append(str(path))
    proc = subprocess.run([kv, "--strict", "--kubernetes-version", "1.30.0", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" passed for resource ") == len(files)


def test_rendered_manifests_pass_checkov(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    assert CHECKOV.exists(), "checkov is not installed: run `make .venv-checkov/bin/checkov`"
    for name, docs in rendered.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run(
        [str(CHECKOV), "--directory", str(tmp_path), "--framework", "kubernetes", "--skip-download",
         "--output", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}"
        for r in reports for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 100, passed  # the manifests were read and checked


def test_sidecar_container_config_and_args(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    for variant in ("default", "attribution"):
        docs = rendered[variant]
        pod = one(docs, "Deployment", "llm-app")["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["app", "genai-sre"]
        app, sidecar = pod["containers"]
        assert {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8788/v1"} in app["env"]
        assert parse(sidecar["args"]).command == "serve"
        assert pod["securityContext"]["runAsUser"] == sidecar["securityContext"]["runAsUser"] == 10001
        data = one(docs, "ConfigMap", "genai-sre-config")["data"]
        assert data["slos.yaml"] == (CHART / "files" / "slos.yaml").read_text()
        etc = tmp_path / variant
        etc.mkdir()
        (etc / "config.yaml").write_text(data["config.yaml"])
        (etc / "slos.yaml").write_text(data["slos.yaml"])
        cfg = load_config(etc / "config.yaml", environ={})
        assert cfg.slo.evaluate == "prometheus" and cfg.incidents.role == "off" and cfg.proxy.host == "127.0.0.1"
        assert main(["check-config", "--config", str(etc / "config.yaml")]) == 0
    attributed = load_config(tmp_path / "attribution" / "config.yaml", environ={})
    assert attributed.labels.tenants == ("acme", "globex") and attributed.pipeline.cpu_budget == 0.3
    assert "llama-3-70b" in attributed.telemetry.prices.models


def test_native_sidecar_mode(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = one(rendered["native-sidecar"], "Deployment", "llm-app")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    (init,) = pod["initContainers"]
    assert init["name"] == "genai-sre" and init["restartPolicy"] == "Always"


def test_primary_sqlite_with_a_volume_or_a_database_url_with_replicas(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    sqlite = one(rendered["default"], "Deployment", "genai-sre-primary")
    assert sqlite["spec"]["replicas"] == 1 and sqlite["spec"]["strategy"]["type"] == "Recreate"
    pvc = one(rendered["default"], "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in sqlite["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    env = {e["name"] for e in sqlite["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "GENAI_SRE_INCIDENTS_URL" not in env

    pg = one(rendered["postgres"], "Deployment", "genai-sre-primary")
    assert pg["spec"]["replicas"] == 2 and pg["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not [d for d in rendered["postgres"] if d["kind"] == "PersistentVolumeClaim"]
    (container,) = pg["spec"]["template"]["spec"]["containers"]
    url = next(e for e in container["env"] if e["name"] == "GENAI_SRE_INCIDENTS_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "incidents-db", "key": "url"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/incidents"
    pdb = one(rendered["postgres"], "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pg["spec"]["template"]["metadata"]["labels"].items()
    assert not [d for d in rendered["default"] if d["kind"] == "PodDisruptionBudget"]

    # Alertmanager's intake URL names this Service and port
    svc = one(rendered["default"], "Service", "genai-sre-primary")
    am = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    assert f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/admin/alertmanager" in am
    assert svc["spec"]["selector"].items() <= sqlite["spec"]["template"]["metadata"]["labels"].items()
    data = one(rendered["default"], "ConfigMap", "genai-sre-primary-config")["data"]
    (tmp_path / "config.yaml").write_text(data["config.yaml"])
    (tmp_path / "slos.yaml").write_text(data["slos.yaml"])
    cfg = load_config(tmp_path / "config.yaml", environ={})
    assert cfg.incidents.role == "primary" and cfg.slo.evaluate == "prometheus" and not cfg.detectors
    assert cfg.incidents.store_url in ("", None) and cfg.incidents.retention_days == 400
    assert parse(container["args"]).command == "serve"


def test_monitoring_objects(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    assert not [d for d in rendered["default"] if d["kind"] in CRDS]
    docs = rendered["monitoring"]
    sm = one(docs, "ServiceMonitor")
    svc = one(docs, "Service", "genai-sre")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
    pod_labels = one(docs, "Deployment", "llm-app")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    slos = yaml.safe_load((CHART / "files" / "slos.yaml").read_text())
    assert svc["metadata"]["name"] == slos["self_monitoring"]["job"]
    rule = one(docs, "PrometheusRule")
    generated = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "genai-sre-slos.rules.yml").read_text())
    assert rule["spec"] == generated
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    promtool("check", "rules", tmp_path / "rules.yml")


def test_network_policies(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["default"]
    app = one(docs, "NetworkPolicy", "llm-app")
    admin = [r for r in app["spec"]["ingress"] if r["ports"] == [{"port": 9464, "protocol": "TCP"}]]
    assert admin and admin[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    primary = one(docs, "NetworkPolicy", "genai-sre-primary")
    assert all("from" in r for r in primary["spec"]["ingress"])
    assert not [d for d in rendered["own-app"] if d["kind"] == "NetworkPolicy"]


def test_chart_files_are_the_generated_ones() -> None:
    assert (CHART / "files" / "slos.yaml").read_text() == (ROOT / "configs" / "slos.yaml").read_text(), (
        "deploy/helm/genai-sre/files/slos.yaml differs from configs/slos.yaml: make deploy-generate"
    )
    rules = DEPLOY / "prometheus" / "rules" / "genai-sre-slos.rules.yml"
    assert (CHART / "files" / "genai-sre-slos.rules.yml").read_text() == rules.read_text(), (
        "deploy/helm/genai-sre/files/genai-sre-slos.rules.yml is stale: make deploy-generate"
    )
