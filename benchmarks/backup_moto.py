"""moto server (S3) that counts the requests it serves, for the backup benchmarks.

The same WSGI application as `moto_server`, wrapped so every request is counted by S3
operation before moto handles it. `GET /__requests` returns the counts as JSON and `POST
/__requests/reset` zeroes them (neither reaches moto, neither is counted).

Prefix listings are served from a sorted index of the bucket's key names, as S3 serves them,
instead of moto's scan of every key of the bucket for each LIST (`S3Backend.list_objects`).
With that scan a LIST cost grows with the bucket, not with its answer: measured on this
machine, 27 ms with 1,000 keys, 104 ms with 12,000. Right after a restart Litestream's
compaction monitors list each database's levels in turn (a few LISTs per database), so with
hundreds of databases the scans kept the one moto process busy for minutes and starved the
PUTs of the databases being written: a benchmark of the sidecar measured moto's scan, not S3.

    python benchmarks/backup_moto.py --port PORT
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.exceptions import MethodNotAllowed
from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket, S3Backend
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


MUTATING = frozenset({"PUT", "POST", "DELETE"})


class KeyIndex:
    """Each bucket's key names, sorted; rebuilt at the first listing after a change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = 0
        self.sorted: dict[str, tuple[int, list[str]]] = {}

    def changed(self) -> None:
        """Called once a mutating request has been applied."""
        with self.lock:
            self.version += 1

    def names(self, bucket: Any) -> list[str]:
        with self.lock:
            version = self.version
            cached = self.sorted.get(bucket.name)
        if cached is not None and cached[0] == version:
            return cached[1]
        names = sorted(list(bucket.keys.keys()))
        with self.lock:
            self.sorted[bucket.name] = (version, names)
        return names


INDEX = KeyIndex()


def indexed_list_objects(
    self: S3Backend,
    bucket: Any,
    prefix: str | None,
    delimiter: str | None,
    marker: str | None,
    max_keys: int | None,
) -> tuple[Any, Any, bool, str | None]:
    """moto's `S3Backend.list_objects` (moto 5.2), the keys under `prefix` found by bisection
    in the sorted names instead of by a scan of the bucket; the rest as moto does it."""
    if isinstance(bucket, FakeTableStorageBucket):
        raise MethodNotAllowed()
    names = INDEX.names(bucket)
    head = prefix or ""
    key_results: set[Any] = set()
    folder_results: set[str] = set()
    for name in islice(names, bisect_left(names, head), None):
        if not name.startswith(head):
            break
        key = bucket.keys.get(name)
        if key is None or isinstance(key, FakeDeleteMarker):
            continue
        rest = name[len(head) :]
        if delimiter and delimiter in rest:
            folder_results.add(f"{head}{rest.split(delimiter)[0]}{delimiter}")
        else:
            key_results.add(key)
    keys: Any = sorted(key_results, key=lambda key: key.name)
    folders: Any = sorted(folder_results)
    if marker:
        limit = self._pagination_tokens.get(marker) or marker
        keys = self._get_results_from_token(keys, limit)
    if max_keys is not None:
        keys, is_truncated, next_marker = self._truncate_result(keys, max_keys)
    else:
        is_truncated, next_marker = False, None
    return keys, folders, is_truncated, next_marker


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
        response = self.app(environ, start_response)
        if method in MUTATING:
            INDEX.changed()
        return response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    S3Backend.list_objects = indexed_list_objects  # type: ignore[method-assign]
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
