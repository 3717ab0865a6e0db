"""The demo's own settings (`configs/demo.yaml`): which sidecar config, scenario and workload to run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genai_sre.schema import load_file

__all__ = ["DemoConfig", "load_demo_config"]


@dataclass(frozen=True)
class DemoConfig:
    sidecar: str = "demo-sidecar.yaml"
    scenario: str = "scenarios/demo.yaml"
    workload: str = "workloads/rag.jsonl"
    rate_per_s: float = 8.0
    duration_s: float = 270.0
    concurrency: int = 8
    stream_share: float = 0.5
    group_header: str = "x-user-group"
    groups: tuple[str, ...] = ("group_a", "group_b", "group_c", "group_d")
    users_per_group: int = 30
    seed: int = 1
    # what the fallback upstream does, when the sidecar config gives the first upstream a `fallback`
    backup_scenario: str = "scenarios/healthy.yaml"
    base_dir: str = field(default=".", compare=False)

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_demo_config(path: str | Path) -> DemoConfig:
    from dataclasses import replace

    cfg = load_file(path, DemoConfig)
    return replace(cfg, base_dir=str(Path(path).resolve().parent))
