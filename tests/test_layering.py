"""The core never imports the built-in detectors; detectors use only the public API of genai_sre."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import genai_sre

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return out


def test_core_never_imports_detectors() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in (ROOT / "genai_sre").rglob("*.py")
        for m in _imports(p)
        if m == "detectors" or m.startswith("detectors.")
    ]
    assert not offenders, offenders


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_core_names_no_detector_even_by_string() -> None:
    """Built-in detectors, probers and guard scorers are reached through entry points, as a plugin would be."""
    offenders = [
        f"{p.relative_to(ROOT)}: {s!r}"
        for p in (ROOT / "genai_sre").rglob("*.py")
        for s in _strings(p)
        if re.match(r"^detectors[.:]", s.strip())
    ]
    assert not offenders, offenders


# Public modules a detector may import besides the package root: the documented extension points.
PUBLIC = {
    "genai_sre",
    "genai_sre.detection.base",
    "genai_sre.events",
    "genai_sre.errors",
    "genai_sre.storage.redact",
    "genai_sre.telemetry.metrics",
    "genai_sre.schema",
    "genai_sre.evaluation",
}


def test_detectors_use_only_the_public_api() -> None:
    offenders = []
    for p in (ROOT / "detectors").rglob("*.py"):
        for m in _imports(p):
            if m.startswith("genai_sre"):
                mod = m if m in PUBLIC or m.count(".") == 0 else m.rsplit(".", 1)[0]
                if mod not in PUBLIC and m not in PUBLIC:
                    offenders.append(f"{p.relative_to(ROOT)}: {m}")
    assert not offenders, offenders


def test_exported_members() -> None:
    import types

    public = {
        n for n in dir(genai_sre) if not n.startswith("_") and not isinstance(getattr(genai_sre, n), types.ModuleType)
    } - {"annotations"}
    assert set(genai_sre.__all__) - {"__version__"} == public
