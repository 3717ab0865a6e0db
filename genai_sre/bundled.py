"""The configuration files shipped with genai-sre, found from any working directory.

The repository's top-level `configs/` folder is their source. A built package
carries a copy as `genai_sre/configs/` (the build step in `setup.py` copies it);
a source checkout or an editable install reads the repository's folder
directly. Every command that falls back to a shipped file (the sidecar config,
`slos.yaml`, `alerting.yaml`, the demo's settings) asks `bundled(name)`.
"""

from __future__ import annotations

from pathlib import Path

from genai_sre.errors import ConfigError

__all__ = ["bundled", "bundled_dir"]

_MARKER = "sidecar.yaml"


def bundled_dir() -> Path:
    """The folder holding the shipped configuration files."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / _MARKER).is_file():
            return candidate
    raise ConfigError(
        f"the bundled configuration files are missing (looked for {here / 'configs'} and {here.parent / 'configs'}); "
        "reinstall genai-sre or pass --config FILE"
    )


def bundled(name: str) -> Path:
    """A shipped file by its name relative to the bundled folder (`slos.yaml`, `scenarios/demo.yaml`)."""
    return bundled_dir() / name
