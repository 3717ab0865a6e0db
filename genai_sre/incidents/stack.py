"""Alert router, incident service and admin routes built from the sidecar config, in one call.

`incidents.role` decides whether this process owns incidents: `primary`
opens the store and serves the incident endpoints; `secondary` and `off` do
not (an `incidents` receiver in their routing config is then a config error).
The router is built whenever `alerting.file` is set; with
`slo.evaluate: prometheus` the SLO engine simply submits nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from genai_sre.alerting.router import AlertRouter
from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.postmortem import EvidenceSource
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore

if TYPE_CHECKING:
    from genai_sre.config import Config
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["AlertingStack", "build_alerting"]


@dataclass
class AlertingStack:
    router: AlertRouter | None
    service: IncidentService | None
    routes: list[web.RouteDef] = field(default_factory=list)

    async def start(self) -> None:
        if self.router is not None:
            await self.router.start()

    async def aclose(self) -> None:
        if self.router is not None:
            await self.router.aclose()
        if self.service is not None:
            self.service.store.close()


def build_alerting(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    environ: Mapping[str, str] | None = None,
    evidence: EvidenceSource | None = None,
    open_on: Sequence[str] = ("page",),
) -> AlertingStack:
    """`open_on`: the `severity` label values that open incidents (the SLO file's `severities.page`)."""
    data_dir = config.resolve(config.storage.data_dir)
    service = None
    if config.incidents.role == "primary":
        service = IncidentService(IncidentStore.open(data_dir), clock, metrics, open_on=open_on)
    router = None
    if config.alerting.file:
        router = AlertRouter.from_config(
            config.resolve(config.alerting.file), clock, metrics, data_dir=data_dir, environ=environ, incidents=service
        )
    routes = admin_routes(service, router, AdminAuth.from_env(config.admin, environ), evidence)
    return AlertingStack(router, service, routes)
