"""moto server (S3) that counts the requests it serves, for the backup benchmarks.

The same WSGI application as `moto_server`, wrapped so every request is counted by S3
operation before moto handles it. `GET /__requests` returns the counts as JSON and `POST
/__requests/reset` zeroes them (neither reaches moto, neither is counted).

    python benchmarks/backup_moto.py --port PORT
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

COUNTS_PATH = "/__requests"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def s3_operation(method: str, path: str, query: str) -> str:
    """A coarse S3 operation name for a path-style request (pure)."""
    params = parse_qs(query, keep_blank_values=True)
    segments = [s for s in path.split("/") if s]
    bucket_level = len(segments) <= 1
    if method == "GET" and bucket_level:
        return "ListObjects"
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if "uploads" in params or "uploadId" in params:
        return f"Multipart{method.title()}"
    return {
        "GET": "GetObject",
        "PUT": "PutObject",
        "HEAD": "HeadObject" if not bucket_level else "HeadBucket",
        "DELETE": "DeleteObject",
    }.get(method, method)


class CountingApp:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        if path.startswith(COUNTS_PATH):
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
                if method == "POST":
                    self.counts.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        operation = s3_operation(method, path, str(environ.get("QUERY_STRING", "")))
        with self.lock:
            self.counts[operation] += 1
        return self.app(environ, start_response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
