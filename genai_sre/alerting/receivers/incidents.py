"""The `incidents` receiver type: routes pages into the incident service of this process."""

from __future__ import annotations

from genai_sre.alerting.receivers import Receiver
from genai_sre.errors import ConfigError

__all__ = ["incidents_receiver"]


def incidents_receiver(*, incidents: Receiver | None = None) -> Receiver:
    """Return the injected incident service; it is a receiver itself."""
    if incidents is None:
        raise ConfigError(
            "receiver type 'incidents' needs the incident service of this process "
            "(incidents.role is 'off' here, or the router was built without incidents=)"
        )
    return incidents
