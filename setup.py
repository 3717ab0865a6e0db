"""Build step: ship the repository's `configs/` folder inside the package as `genai_sre/configs`.

`configs/` stays the one source of the bundled configuration (the sidecar defaults, SLOs, alert
routes, the demo's settings, scenarios and workload); a built wheel carries a copy, so every
command finds them after `pip install` from any directory (`genai_sre.bundled`). An editable
install reads the checkout's `configs/` directly. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = ROOT / "configs"
        target = Path(self.build_lib) / "genai_sre" / "configs"
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithConfigs})
