"""A bare admin server for the crash test: `python -m tests.incidents.webhook_server DATA_DIR PORT`."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import IncidentStore


def main() -> None:
    data_dir, port = sys.argv[1], int(sys.argv[2])
    service = IncidentService(IncidentStore.open(data_dir))
    app = web.Application()
    app.add_routes(admin_routes(service, None, AdminAuth(os.environ["TEST_ADMIN_TOKEN"])))
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True))


if __name__ == "__main__":
    main()
