"""The one exception tree of genai-sre.

```
GenAISREError
 ├── ConfigError            bad configuration: names the file, key and line
 │    └── PluginLoadError   a detector/receiver that cannot be found or built
 ├── DatasetError           an evaluation dataset that does not follow the contract
 ├── StorageError           a store (SQLite or PostgreSQL) cannot be opened, migrated or used
 │    └── StorageUnavailable  locked, busy or unreachable for now: try again (the admin API answers 503)
 ├── ListenError            a port the sidecar must listen on cannot be bound
 └── DeliveryError          an alert receiver refused or could not be reached
```

Configuration and plugin problems fail fast at startup. On the request and
worker paths nothing raises to the client: failures are caught at the isolation
boundaries (detector runner, exporters, receivers), logged and counted.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "DeliveryError",
    "GenAISREError",
    "ListenError",
    "PluginLoadError",
    "StorageError",
    "StorageUnavailable",
]


class GenAISREError(Exception):
    """Base class of every error genai-sre raises on purpose."""


class ConfigError(GenAISREError):
    """A configuration file or value is wrong. The message names where."""


class PluginLoadError(ConfigError):
    """A configured plugin cannot be imported or built."""


class DatasetError(GenAISREError):
    """An evaluation dataset does not follow the JSONL contract."""


class StorageError(GenAISREError):
    """The data directory or a database cannot be used."""


class StorageUnavailable(StorageError):
    """The database is locked, busy or unreachable for now; the same call may succeed later."""


class ListenError(GenAISREError):
    """A port the sidecar must listen on cannot be bound (in use, not permitted)."""

    @classmethod
    def of(cls, what: str, host: str, port: int, exc: OSError) -> ListenError:
        reason = exc.strerror or str(exc)
        return cls(f"cannot listen on {host}:{port} ({what}): {reason}")


class DeliveryError(GenAISREError):
    """An alert could not be delivered to a receiver."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
