"""Incidents: a store (SQLite or PostgreSQL), the service that opens and updates them, the admin API, postmortems."""

from __future__ import annotations

from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.figures import Summary
from genai_sre.incidents.postmortem import EvidenceSource, render_postmortem, write_postmortem
from genai_sre.incidents.service import IncidentService, IngestResult
from genai_sre.incidents.stack import AlertingStack, build_alerting
from genai_sre.incidents.store import IncidentStore, open_store

__all__ = [
    "AdminAuth",
    "AlertingStack",
    "EvidenceSource",
    "IncidentService",
    "IncidentStore",
    "IngestResult",
    "Summary",
    "admin_routes",
    "build_alerting",
    "render_postmortem",
    "open_store",
    "write_postmortem",
]
