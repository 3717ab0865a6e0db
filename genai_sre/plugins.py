"""Load plugins by entry-point name or `"module:attr"` import string.

One mechanism for built-in and third-party plugins: the built-in detectors are
registered in `pyproject.toml` under the entry-point group
`genai_sre.detectors`, exactly as a third party would register theirs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from genai_sre.errors import ConfigError, PluginLoadError

__all__ = ["build", "import_from_string", "resolve"]


def import_from_string(spec: str) -> Any:
    """Import `"package.module:attribute"` and return the attribute."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PluginLoadError(f"Import string {spec!r} must be of the form '<module>:<attribute>'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginLoadError(f"Could not import module {module_name!r} for {spec!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise PluginLoadError(f"Module {module_name!r} has no attribute {attr!r}.") from exc


def resolve(group: str, type_name: str) -> Callable[..., Any]:
    """Find a plugin factory by entry-point name in `group`, or by import string."""
    if ":" in type_name:
        factory = import_from_string(type_name)
    else:
        matches = entry_points(group=group, name=type_name)
        if not matches:
            known = sorted(ep.name for ep in entry_points(group=group))
            raise PluginLoadError(
                f"Unknown type {type_name!r} in entry-point group {group!r}. Installed: {', '.join(known) or 'none'}."
            )
        try:
            factory = next(iter(matches)).load()
        except Exception as exc:  # a broken plugin package must fail with its name attached
            raise PluginLoadError(f"Plugin {type_name!r} in {group!r} failed to load: {exc}") from exc
    if not callable(factory):
        raise PluginLoadError(f"Plugin {type_name!r} is not callable.")
    return factory  # type: ignore[no-any-return]


def build(group: str, name: str, type_name: str, options: Mapping[str, Any], **injected: Any) -> Any:
    """Build one configured plugin instance.

    `options` come from the config file; `injected` keywords (such as
    `context=`) are passed only when the factory's signature accepts them.
    """
    factory = resolve(group, type_name)
    kwargs = dict(options)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in injected.items():
        if key in params or accepts_any:
            kwargs.setdefault(key, value)
    try:
        return factory(**kwargs)
    except PluginLoadError:
        raise
    except TypeError as exc:
        raise PluginLoadError(f"{name!r} ({type_name}): bad options: {exc}") from exc
    except (ValueError, ConfigError) as exc:  # a declared options dataclass names the key
        raise PluginLoadError(f"{name!r} ({type_name}): {exc}") from exc
