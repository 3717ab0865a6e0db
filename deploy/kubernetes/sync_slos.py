"""Copy configs/slos.yaml into the `slos.yaml` key of deploy/kubernetes/configmap.yaml (`make deploy-generate`).

Everything above the `slos.yaml: |` line of the ConfigMap is kept as it is; standard library only.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = ROOT / "deploy" / "kubernetes" / "configmap.yaml"
SLOS = ROOT / "configs" / "slos.yaml"
KEY = "  slos.yaml: |\n"


def main() -> None:
    text = CONFIGMAP.read_text(encoding="utf-8")
    head = text[: text.index(KEY)] if KEY in text else text.rstrip("\n") + "\n"
    lines = SLOS.read_text(encoding="utf-8").splitlines(True)
    body = "".join(f"    {line}" if line.strip() else "\n" for line in lines)
    CONFIGMAP.write_text(head + KEY + body, encoding="utf-8")


if __name__ == "__main__":
    main()
