"""Where each configuration value comes from: the bundled file, your file, the environment, flags.

One rule for every command (`serve`, `check-config`, `demo`, `slo status`, `incidents`, ...):

1. The bundled `sidecar.yaml` (`genai_sre.bundled`) holds the defaults. Its relative
   paths (`slos.yaml`, `alerting.yaml`) name the bundled files.
2. A config file (`--config` or `$GENAI_SRE_CONFIG`) is laid over it: sections merge
   key by key, every other value (lists such as `detectors` and `upstreams`, mappings
   such as `labels.group_headers`) replaces the bundled one whole. Relative paths
   written in your file are relative to your file's folder.
3. The `GENAI_SRE_*` variables of `ENV_OVERRIDES` replace what either file says.
4. Command-line flags (`--upstream`, `--host`, `--port`, ...) replace all of the above.

The data directory is `storage.data_dir` after these steps; a relative one is
taken from the working directory of the command, never from a config file's
folder, so `serve`, `slo status` and `incidents` run in one directory agree.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from genai_sre.schema import Document

__all__ = ["ENV_OVERRIDES", "LayeredDocument", "absolutize", "apply_env", "merge"]

Path_ = tuple[str | int, ...]

# Variable -> the key it sets. An empty value counts as unset.
ENV_OVERRIDES: Mapping[str, Path_] = {
    "GENAI_SRE_UPSTREAM": ("upstreams", 0, "url"),
    "GENAI_SRE_HOST": ("proxy", "host"),
    "GENAI_SRE_PORT": ("proxy", "port"),
    "GENAI_SRE_ADMIN_HOST": ("admin", "host"),
    "GENAI_SRE_ADMIN_PORT": ("admin", "port"),
    "GENAI_SRE_DATA_DIR": ("storage", "data_dir"),
    "GENAI_SRE_LOG_LEVEL": ("logging", "level"),
    "GENAI_SRE_SLO_EVALUATE": ("slo", "evaluate"),
    "GENAI_SRE_INCIDENTS_ROLE": ("incidents", "role"),
}

# Keys holding a file name relative to the config file that sets them.
PATH_KEYS: tuple[Path_, ...] = (("slo", "file"), ("alerting", "file"), ("probes",), ("telemetry", "prices", "file"))


@dataclasses.dataclass(frozen=True)
class LayeredDocument(Document):
    """The merged data of several documents; errors name the layer (file and line, or variable) of each key."""

    layers: tuple[Document, ...] = ()  # highest precedence first
    env_paths: Mapping[Path_, str] = dataclasses.field(default_factory=dict)

    def where(self, path: Path_) -> str:
        for cut in range(len(path), 0, -1):
            name = self.env_paths.get(path[:cut])
            if name is not None:
                return Document(None, f"${name}", {}).where(path)
        inner = sorted(n for p, n in self.env_paths.items() if path and p[: len(path)] == path)
        suffix = f" (with {', '.join('$' + n for n in inner)})" if inner else ""
        for cut in range(len(path), 0, -1):
            for doc in self.layers:
                if path[:cut] in doc.lines:
                    return doc.where(path) + suffix
        return (self.layers[0].where(path) if self.layers else super().where(path)) + suffix


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass a field type holds (through Annotated and Optional), or None."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _dataclass_of(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _dataclass_of(inner[0]) if len(inner) == 1 else None
    return tp if dataclasses.is_dataclass(tp) and isinstance(tp, type) else None


def merge(cls: type, base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: sections (dataclass-typed keys of `cls`) merge, everything else replaces."""
    hints = get_type_hints(cls, include_extras=True)
    out = dict(base)
    for key, value in over.items():
        section = _dataclass_of(hints.get(key))
        if section is not None and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(section, out[key], value)
        else:
            out[key] = value
    return out


def absolutize(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Make the relative file names in `data` (the keys of `PATH_KEYS`) absolute against `folder`."""
    for path in PATH_KEYS:
        node: Any = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        last = path[-1]
        if isinstance(node, dict) and isinstance(node.get(last), str) and node[last]:
            value = Path(node[last])
            if not value.is_absolute():
                node[last] = str(folder / value)
    return data


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[Path_, str]:
    """Set the keys of the `GENAI_SRE_*` variables present in `environ`; return the variable of each path set."""
    applied: dict[Path_, str] = {}
    for name, path in ENV_OVERRIDES.items():
        value = environ.get(name, "")
        if not value:
            continue
        if name == "GENAI_SRE_LOG_LEVEL":
            value = value.upper()
        if path[0] == "upstreams":
            ups = data.get("upstreams")
            ups = [dict(u) if isinstance(u, dict) else u for u in ups] if isinstance(ups, list) else []
            if not ups:
                ups = [{"name": "default"}]
            if isinstance(ups[0], dict):
                ups[0]["url"] = value
            data["upstreams"] = ups
        else:
            section = data.get(str(path[0]))
            section = dict(section) if isinstance(section, dict) else {}
            section[str(path[1])] = value
            data[str(path[0])] = section
        applied[path] = name
    return applied
