"""A bare admin server for the crash and HA tests: `python -m tests.incidents.webhook_server DATA_DIR PORT [URL]`.

URL is the incident store ("" or absent: SQLite in DATA_DIR). Prints `ready` once it listens.
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

from genai_sre.alerting.silences import Silences, StoreSilences
from genai_sre.incidents.api import AdminAuth, admin_routes
from genai_sre.incidents.service import IncidentService
from genai_sre.incidents.store import open_store


def main() -> None:
    data_dir, port = sys.argv[1], int(sys.argv[2])
    url = sys.argv[3] if len(sys.argv) > 3 else ""
    service = IncidentService(open_store(url, data_dir))
    silences = Silences(service.clock, backend=StoreSilences(service.store))
    app = web.Application()
    app.add_routes(admin_routes(service, silences, AdminAuth(os.environ["TEST_ADMIN_TOKEN"])))
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True))


if __name__ == "__main__":
    main()
