"""A webhook sink for the compose stack: prints every POSTed body as one JSON line on stdout.

Run by the `log-sink` service (`python /opt/log_sink.py --port 8080`); standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = body
        sys.stdout.write(json.dumps({"path": self.path, "body": payload}, sort_keys=True) + "\n")
        sys.stdout.flush()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description="print webhook bodies as JSON lines")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Sink).serve_forever()


if __name__ == "__main__":
    main()
