"""YAML to frozen dataclasses, with errors that name the file, the key and the line.

Loading happens in three steps, as OpenTelemetry's file configuration does:
parse the YAML (keeping each key's line), substitute `${VAR}` and
`${VAR:-default}` in scalar strings (after parsing, so an environment value can
never inject YAML structure), then build typed frozen dataclasses, coercing
strings to the declared scalar types and refusing unknown keys.

Any module can define its own section as a dataclass and call `load_file` /
`build` with it; this is how `slos.yaml`, `alerting.yaml` and `probes.yaml` are
read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from genai_sre.errors import ConfigError

__all__ = ["Document", "Range", "build", "load_document", "load_file", "read_document", "substitute"]

T = TypeVar("T")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Path_ = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed interval of a numeric key: `Annotated[float, Range(0, 60)]` (bounds inclusive).

    `above` makes the lower bound exclusive (`Range(above=0)`: strictly positive). Every number
    read from a file must also be finite: NaN and infinities are refused everywhere.
    """

    min: float | None = None
    max: float | None = None
    above: float | None = None

    def check(self, value: float) -> str | None:
        if self.above is not None and not value > self.above:
            return f"must be greater than {_num(self.above)}, got {_num(value)}"
        if self.min is not None and value < self.min:
            return f"must be at least {_num(self.min)}, got {_num(value)}"
        if self.max is not None and value > self.max:
            return f"must be at most {_num(self.max)}, got {_num(value)}"
        return None


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def substitute(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; an unset variable without a default is an error."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise ConfigError(f"environment variable {name!r} is not set and has no default (${{{name}:-...}})")
            return default
        return value

    return _ENV.sub(repl, text)


@dataclasses.dataclass(frozen=True)
class Document:
    """A parsed YAML file: plain data plus the line of every key."""

    data: Any
    source: str
    lines: Mapping[Path_, int]

    def where(self, path: Path_) -> str:
        dotted = _dotted(path) or "<top level>"
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return f"{self.source}:{line}: {dotted}"
        return f"{self.source}: {dotted}"


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], environ: Mapping[str, str] | None, source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, path + (key,), lines, environ, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, path + (i,), lines, environ, source) for i, v in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    tag = node.tag
    raw = node.value
    if isinstance(raw, str) and "${" in raw:
        try:
            raw = substitute(raw, environ)
        except ConfigError as exc:
            raise ConfigError(f"{source}:{node.start_mark.line + 1}: {_dotted(path)}: {exc}") from exc
        return raw  # substituted values stay strings; build() coerces to the declared type
    if tag.endswith(":str") or node.style in ("'", '"', "|", ">"):
        return raw
    resolved = yaml.safe_load(raw) if raw != "" else None
    return resolved


def load_document(text: str, source: str = "<string>", environ: Mapping[str, str] | None = None) -> Document:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        detail = f"{problem} ({context})" if context else problem
        raise ConfigError(f"{where}: not valid YAML: {detail}") from None
    lines: dict[Path_, int] = {}
    data = {} if root is None else _walk(root, (), lines, environ, source)
    return Document(data=data, source=source, lines=lines)


def read_document(path: str | Path, what: str = "config file", environ: Mapping[str, str] | None = None) -> Document:
    """Read and parse a YAML file whose top level must be a mapping; errors say which `what` could not be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(p)!r}: {exc.strerror or exc}") from exc
    doc = load_document(text, str(p), environ)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    return doc


def load_file(path: str | Path, cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Read a YAML file into the dataclass `cls`, or raise ConfigError naming file, line and key."""
    doc = read_document(path, environ=environ)
    return build(cls, doc.data, doc)


def build(cls: type[T], data: Any, doc: Document | None = None, path: Path_ = ()) -> T:
    doc = doc or Document(data=data, source="<config>", lines={})
    return _convert(cls, data, doc, path)  # type: ignore[no-any-return]


def _fail(doc: Document, path: Path_, message: str) -> ConfigError:
    return ConfigError(f"{doc.where(path)}: {message}")


def _convert(tp: Any, value: Any, doc: Document, path: Path_) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Annotated:
        base, *extras = get_args(tp)
        out = _convert(base, value, doc, path)
        for extra in extras:
            if isinstance(extra, Range) and isinstance(out, (int, float)):
                problem = extra.check(out)
                if problem:
                    raise _fail(doc, path, problem)
        return out
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, doc, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1]) if errors else _fail(doc, path, "invalid value")
    if origin is typing.Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise _fail(doc, path, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, value, doc, path)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, list):
            raise _fail(doc, path, f"must be a list, got {type(value).__name__}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(_convert(item, v, doc, path + (i,)) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict,) or origin is typing.Mapping or origin is typing.MutableMapping:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _fail(doc, path, f"must be a mapping, got {type(value).__name__}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, doc, path + (str(k),)) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise _fail(doc, path, f"must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise _fail(doc, path, f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise _fail(doc, path, f"must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise _fail(doc, path, f"must be a number, got {value!r}")
        number: float | None = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise _fail(doc, path, f"must be a number, got {value!r}")
        if not math.isfinite(number):
            raise _fail(doc, path, f"must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise _fail(doc, path, f"must be a string, got {type(value).__name__ if value is not None else 'nothing'}")
        return str(value)
    return value


def _dataclass(cls: type, value: Any, doc: Document, path: Path_) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _fail(doc, path, f"must be a mapping, got {type(value).__name__}")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise _fail(doc, path + (unknown[0],), f"unknown key {unknown[0]!r} (known keys: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], doc, path + (name,))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail(doc, path, f"missing required key {name!r}")
    try:
        obj = cls(**kwargs)
    except (ValueError, ConfigError) as exc:
        raise _fail(doc, path, str(exc)) from exc
    return obj
