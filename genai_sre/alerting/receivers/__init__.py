"""Alert receivers: one module each, one async `send(notification)` method.

A receiver raises `DeliveryError(retryable=True)` for failures worth retrying
(timeouts, connection errors, HTTP 429 and 5xx) and `DeliveryError()` for the
rest; `genai_sre.alerting.delivery` owns timeouts, retries and bookkeeping.
Receivers may also have `async start()` and `async aclose()`.

Built-in `type:` names are listed in `BUILTIN`; any other type is a
`"module:attr"` import string naming a factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from genai_sre import plugins
from genai_sre.alerting.notification import Notification
from genai_sre.errors import PluginLoadError

__all__ = ["BUILTIN", "Receiver", "build_receiver", "env_secret"]

BUILTIN: Mapping[str, str] = {
    "alertmanager": "genai_sre.alerting.receivers.alertmanager:AlertmanagerReceiver",
    "pagerduty": "genai_sre.alerting.receivers.pagerduty:PagerDutyReceiver",
    "slack": "genai_sre.alerting.receivers.slack:SlackReceiver",
    "webhook": "genai_sre.alerting.receivers.webhook:WebhookReceiver",
    "file": "genai_sre.alerting.receivers.file:FileReceiver",
    "stdout": "genai_sre.alerting.receivers.stdout:StdoutReceiver",
    "incidents": "genai_sre.alerting.receivers.incidents:incidents_receiver",
}


@runtime_checkable
class Receiver(Protocol):
    async def send(self, notification: Notification) -> None: ...


def env_secret(environ: Mapping[str, str], env_name: str, what: str) -> str:
    """Read a secret from the environment variable the config names; ValueError when unset."""
    if not env_name:
        raise ValueError(f"{what}: the name of the environment variable holding it is empty")
    value = environ.get(env_name, "")
    if not value:
        raise ValueError(f"{what}: environment variable {env_name!r} is not set")
    return value


def build_receiver(name: str, type_name: str, options: Mapping[str, Any], **injected: Any) -> Receiver:
    """Build one configured receiver (PluginLoadError names it when it cannot be built)."""
    spec = BUILTIN.get(type_name, type_name)
    receiver = plugins.build("genai_sre.receivers", name, spec, options, **injected)
    if not isinstance(receiver, Receiver):
        raise PluginLoadError(f"receiver {name!r} ({type_name}) has no async send(notification) method")
    return receiver
