"""The Dockerfile's ENTRYPOINT + CMD, the compose commands and the Kubernetes container args are
`genai-sre` command lines the project's own parser accepts, with the config files they name."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from genai_sre.cli import build_parser, main
from genai_sre.config import load_config
from genai_sre.mock.scenario import load_scenario
from tests.deploy.files import DEPLOY, ROOT, compose, dockerfile, kube

IMAGE_CONFIG = "/etc/genai-sre/config.yaml"


def parse(argv: list[str]) -> argparse.Namespace:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on an unknown command or flag
        raise AssertionError(f"genai-sre rejects {argv}") from exc


def image_argv() -> tuple[list[str], list[str]]:
    ins = {i.keyword: i for i in dockerfile()}
    return ins["ENTRYPOINT"].exec_form(), ins["CMD"].exec_form()


def test_dockerfile_entrypoint_and_cmd_parse() -> None:
    entrypoint, cmd = image_argv()
    assert entrypoint == ["genai-sre"]
    args = parse(cmd)
    assert args.command == "serve" and args.config == IMAGE_CONFIG


def compose_genai_commands() -> dict[str, list[str]]:
    services = compose()["services"]
    out = {}
    for name, svc in services.items():
        if str(svc.get("image", "")).startswith("genai-sre:"):
            assert isinstance(svc.get("command"), list), f"compose service {name}: command must be a list (exec form)"
            out[name] = [str(a) for a in svc["command"]]
    return out


def test_compose_commands_parse() -> None:
    cmds = compose_genai_commands()
    assert set(cmds) == {"genai-sre", "mock-upstream"}
    serve = parse(cmds["genai-sre"])
    assert serve.command == "serve" and serve.config == IMAGE_CONFIG and serve.upstream == "http://mock-upstream:9100"
    mock = parse(cmds["mock-upstream"])
    assert mock.command == "mock-upstream" and mock.host == "0.0.0.0" and mock.port == 9100
    # The scenario named by MOCK_SCENARIO (default healthy) is one the image ships and it loads.
    assert mock.scenario == "/etc/genai-sre/scenarios/${MOCK_SCENARIO:-healthy}.yaml"
    for name in ("healthy", "demo", "errors", "hallucinating", "biased"):
        load_scenario(ROOT / "configs" / "scenarios" / f"{name}.yaml")


@pytest.mark.parametrize("deployment", ["llm-app", "genai-sre-primary"])
def test_kubernetes_sidecar_args_parse(deployment: str) -> None:
    pod = kube("Deployment", deployment)["spec"]["template"]["spec"]
    (sidecar,) = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "genai-sre"]
    assert "command" not in sidecar, "the image's ENTRYPOINT (genai-sre) must stay"
    args = parse(sidecar["args"])
    assert args.command == "serve" and args.config == IMAGE_CONFIG


def _etc(tmp: Path, config_text: str, slos_text: str, alerting: bool = True) -> Path:
    """A copy of /etc/genai-sre as the container sees it."""
    etc = tmp / "etc-genai-sre"
    etc.mkdir()
    (etc / "config.yaml").write_text(config_text)
    (etc / "slos.yaml").write_text(slos_text)
    if alerting:
        shutil.copy(ROOT / "configs" / "alerting.yaml", etc / "alerting.yaml")
    return etc / "config.yaml"


def test_image_config_loads(tmp_path: Path) -> None:
    image_config = (DEPLOY / "config" / "sidecar.yaml").read_text()
    cfg_path = _etc(tmp_path, image_config, (ROOT / "configs" / "slos.yaml").read_text())
    cfg = load_config(cfg_path, environ={})
    assert (cfg.proxy.host, cfg.proxy.port, cfg.admin.host, cfg.admin.port) == ("0.0.0.0", 8788, "0.0.0.0", 9464)
    assert cfg.storage.data_dir == "/var/lib/genai-sre" and cfg.incidents.role == "primary"
    assert cfg.upstreams[0].url == "http://mock-upstream:9100"
    fleet = load_config(cfg_path, environ={"GENAI_SRE_SLO_EVALUATE": "prometheus", "GENAI_SRE_INCIDENTS_ROLE": "off"})
    assert fleet.slo.evaluate == "prometheus" and fleet.incidents.role == "off"
    assert cfg.resolve(cfg.slo.file or "").exists() and cfg.resolve(cfg.alerting.file or "").exists()
    assert {d.type for d in cfg.detectors} == {"latency", "hallucination", "refusal", "bias"}
    # What `docker run IMAGE check-config --config /etc/genai-sre/config.yaml` runs.
    assert main(["check-config", "--config", str(cfg_path)]) == 0


def test_kubernetes_configmap_is_fleet_mode_and_loads(tmp_path: Path) -> None:
    data = kube("ConfigMap", "genai-sre-config")["data"]
    assert data["slos.yaml"] == (ROOT / "configs" / "slos.yaml").read_text(), (
        "deploy/kubernetes/configmap.yaml slos.yaml differs from configs/slos.yaml: make deploy-generate"
    )
    cfg_path = _etc(tmp_path, data["config.yaml"], data["slos.yaml"], alerting=False)
    cfg = load_config(cfg_path, environ={})
    assert main(["check-config", "--config", str(cfg_path)]) == 0
    assert cfg.slo.evaluate == "prometheus" and cfg.incidents.role == "off"
    assert cfg.proxy.host == "127.0.0.1" and cfg.admin.port == 9464 and cfg.storage.data_dir == "/var/lib/genai-sre"
    pod = kube("Deployment", "llm-app")["spec"]["template"]["spec"]
    env = {e["name"] for c in pod["initContainers"] + pod["containers"] for e in c.get("env", [])}
    assert cfg.admin.token_env in env


@pytest.mark.parametrize("argv", [["dashboards", "--out", "deploy/grafana/dashboards"],
                                  ["rules", "--format", "prometheusrule", "--out", "deploy/kubernetes"],
                                  ["rules", "--out", "deploy/prometheus/rules"]])
def test_generator_command_lines_in_docs_parse(argv: list[str]) -> None:
    parse(argv)
    assert " ".join(argv) in (ROOT / "docs" / "deploy.md").read_text()


def test_compose_files_exist() -> None:
    for name, svc in compose()["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"compose service {name}: {src} does not exist"
    assert yaml.safe_load((DEPLOY / "config" / "sidecar.yaml").read_text())["admin"]["port"] == 9464
