"""Optional stages wired onto a `Sidecar`: SLOs, alerting, incidents, evidence store, telemetry, probes."""

from __future__ import annotations

from genai_sre.app import Sidecar
from genai_sre.config import Config

__all__ = ["check_files", "wire"]


async def wire(sidecar: Sidecar) -> None:
    """Attach the stages the config enables. Called before `sidecar.start()`."""
    return None


def check_files(config: Config) -> list[str]:
    """Validate the files the config points at; return one note per file checked."""
    return []
