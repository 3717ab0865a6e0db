"""Alert router, incident service and admin routes built from the sidecar config, in one call.

`incidents.role` decides whether this process owns incidents: `primary`
opens the store and serves the incident endpoints; `secondary` and `off` do
not (an `incidents` receiver in their routing config is then a config error).
The store is SQLite in the data directory, or the PostgreSQL database of
`incidents.store_url` (else `$GENAI_SRE_INCIDENTS_URL`), which several
primaries share; on a primary the silences live in that store too. The router
is built whenever `alerting.file` is set; with `slo.evaluate: prometheus` the
SLO engine simply submits nothing.

A primary deletes what is older than `incidents.retention_days` at start and
every hour, and reports its store in readiness (`ready()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from genai_sre.alerting.router import AlertRouter
from genai_sre.alerting.silences import FileSilences, Silences, StoreSilences
from genai_sre.errors import StorageError
from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.postmortem import EvidenceSource
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore, open_store, resolve_store_url

if TYPE_CHECKING:
    from genai_sre.config import Config
    from genai_sre.telemetry.metrics import Metrics

__all__ = ["RECEIPT_RETENTION_S", "AlertingStack", "build_alerting", "import_silences_file"]

logger = logging.getLogger(__name__)

DAY_S = 86400.0
# Webhook receipts only deduplicate Alertmanager's retries and re-sends: a month is plenty.
RECEIPT_RETENTION_S = 30 * DAY_S
PRUNE_EVERY_S = 3600.0


@dataclass
class AlertingStack:
    router: AlertRouter | None
    service: IncidentService | None
    routes: list[web.RouteDef] = field(default_factory=list)
    silences: Silences | None = None
    retention_s: float = 400 * DAY_S
    _pruner: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        if self.router is not None:
            await self.router.start()
        if self.service is not None and self._pruner is None:
            self._pruner = asyncio.create_task(self._prune_forever(), name="genai-sre-incident-retention")

    async def prune(self) -> dict[str, int]:
        """Delete what retention allows, off the event loop."""
        assert self.service is not None
        now = self.service.clock()
        return await self.service.call(
            self.service.store.prune,
            incidents_before=now - self.retention_s,
            receipts_before=now - min(self.retention_s, RECEIPT_RETENTION_S),
        )

    async def _prune_forever(self) -> None:
        while True:
            try:
                counts = await self.prune()
                if any(counts.values()):
                    logger.info("incident retention: deleted %s", counts)
            except StorageError as exc:
                logger.warning("incident retention skipped: %s", exc)
            await asyncio.sleep(PRUNE_EVERY_S)

    async def ready(self) -> str | None:
        """None when the incident store answers; else the problem (for /readyz)."""
        if self.service is None:
            return None
        try:
            await self.service.call(self.service.store.ping)
        except StorageError as exc:
            return f"incident store unavailable: {exc}"
        return None

    async def aclose(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self.router is not None:
            await self.router.aclose()
        if self.service is not None:
            self.service.store.close()


def import_silences_file(path: Path, silences: Silences) -> int:
    """Move the silences of a JSON file (kept before the store held them) into the store, once."""
    if not path.is_file():
        return 0
    now = time.time()
    known = {s.id for s in silences.list()}
    loaded = FileSilences(path).load(now, force=True) or []
    assert silences.backend is not None
    added = 0
    for silence in loaded:
        if silence.id not in known and silence.ends_at > now:
            silences.backend.add(silence, now)
            added += 1
    path.rename(path.with_name(path.name + ".imported"))
    silences.refresh()
    logger.info("moved %d silence(s) from %s into the incident store", added, path)
    return added


def build_alerting(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    environ: Mapping[str, str] | None = None,
    evidence: EvidenceSource | None = None,
    store: IncidentStore | None = None,
    open_on: Sequence[str] = ("page",),
) -> AlertingStack:
    """`open_on`: the `severity` label values that open incidents (the SLO file's `severities.page`)."""
    from genai_sre.alerting.config import load_alerting_config

    data_dir = config.resolve(config.storage.data_dir)
    alerting = load_alerting_config(config.resolve(config.alerting.file), environ) if config.alerting.file else None
    service = None
    silences = None
    if config.incidents.role == "primary":
        if store is None:
            store = open_store(resolve_store_url(config.incidents.store_url, environ), data_dir)
        service = IncidentService(store, clock, metrics, open_on=open_on)
        silences = Silences(clock, backend=StoreSilences(store))
        if alerting is not None and alerting.silences_file:
            try:
                import_silences_file(data_dir / alerting.silences_file, silences)
            except (OSError, StorageError) as exc:
                logger.warning("silences file %s not imported: %s", data_dir / alerting.silences_file, exc)
    router = None
    if alerting is not None:
        router = AlertRouter.from_config(
            alerting, clock, metrics, data_dir=data_dir, environ=environ, incidents=service, silences=silences
        )
        silences = router.silences
    routes = admin_routes(service, silences, AdminAuth.from_env(config.admin, environ), evidence)
    return AlertingStack(router, service, routes, silences, config.incidents.retention_days * DAY_S)
