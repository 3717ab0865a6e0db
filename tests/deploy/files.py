"""Reading the deploy files: Dockerfile instructions, compose services, Kubernetes documents, tools."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
KUBE = DEPLOY / "kubernetes"
VENV_BIN = ROOT / ".venv" / "bin"


def tool(name: str, hint: str) -> str:
    """The path of a command-line tool, from the project venv or PATH; fails (never skips) when missing."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: {hint}")
    return found


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK ... CMD)."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text[text.index(" CMD ") + 5 :]
        value = json.loads(text)
        assert isinstance(value, list), f"Dockerfile line {self.line}: {self.keyword} is not in exec form"
        return [str(v) for v in value]


def dockerfile() -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for n, raw in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), re.sub(r"\s+", " ", args).strip()))
        buf = ""
    return out


def stages() -> dict[str, list[Instruction]]:
    result: dict[str, list[Instruction]] = {}
    current = ""
    for ins in dockerfile():
        if ins.keyword == "FROM":
            current = ins.args.split(" AS ")[-1].strip() if " AS " in ins.args else ins.args
            result[current] = []
        if current:
            result[current].append(ins)
    return result


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def kube_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def kube(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in kube_documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/kubernetes, found {len(found)}"
    return found[0]
