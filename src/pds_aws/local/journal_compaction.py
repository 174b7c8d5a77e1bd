"""Compaction of the local AWS journal: the state it replays to, in as few requests as possible.

The journal (aws_emulator.py) records every mutating request, so it grows with every Litestream
upload, compaction and delete, and a start replays all of it. Right after a replay, moto holds
the current state, and the journal can be rewritten as:

1. every request that is not an S3 object operation (bucket creation and configuration, KMS
   keys and aliases, secrets and their values), verbatim and in order: few and small, and
   `kms-keys.jsonl` pairs the saved key material with the CreateKey requests by their order;
2. one PUT per object that exists now, with its bytes, content type, user metadata, storage
   class and checksum, stamped with its LastModified (the replay freezes moto's clock there:
   Litestream's point-in-time restore picks files by it).

What is dropped, by design: objects deleted since, earlier contents of overwritten objects,
noncurrent versions in versioned buckets (nothing in the local runtime reads them; on AWS the
bucket's lifecycle expires them), and multipart uploads never completed (their clients are
gone after a restart). Object tags and ACLs are not reproduced, so a journal holding requests
that set them is left as it is, as is one with a request it cannot attribute to a service.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

# Object sub-resources whose effect the compacted journal reproduces (from the object itself),
# or that leave nothing once the upload is complete. Any other one keeps the journal as it is.
if TYPE_CHECKING:
    from pds_aws.local.aws_emulator import Journal

_REPRODUCED_OBJECT_QUERIES = frozenset({"", "x-id", "uploads", "uploadId", "partNumber"})
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_PATH_STYLE_HOSTS = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")


class NotCompactable(Exception):
    """The journal holds a request whose effect compaction would not reproduce."""


@dataclass(frozen=True)
class S3Request:
    bucket: str
    key: str  # "" for a bucket-level request
    query: frozenset[str]


def _credential_scope(entry: dict[str, Any]) -> tuple[str, str] | None:
    """(region, service) from the request's SigV4 Authorization header or presigned query."""
    headers = entry.get("headers", {})
    for source in (str(headers.get("HTTP_AUTHORIZATION", "")), str(entry.get("query", ""))):
        match = _CREDENTIAL_SCOPE.search(source.replace("%2F", "/"))
        if match:
            return match.group(1), match.group(2)
    return None


def s3_request(entry: dict[str, Any]) -> S3Request | None:
    """The bucket and key an S3 request names, or None for another service's request.

    Raises NotCompactable for a request that cannot be attributed with certainty."""
    headers = entry.get("headers", {})
    if headers.get("HTTP_X_AMZ_TARGET"):
        return None  # JSON protocol: KMS, Secrets Manager
    scope = _credential_scope(entry)
    if scope is None:
        raise NotCompactable(f"unsigned request {entry.get('method')} {entry.get('path')}")
    if scope[1] != "s3":
        return None
    host = str(headers.get("HTTP_HOST", ""))
    if not _PATH_STYLE_HOSTS.match(host):
        raise NotCompactable(f"S3 request to host {host!r} (only path-style is compacted)")
    bucket, _, key = str(entry.get("path", "")).lstrip("/").partition("/")
    query = frozenset(name for name, _ in parse_qsl(str(entry.get("query", "")), True))
    return S3Request(bucket, key, query)


def _is_object_operation(request: S3Request) -> bool:
    if request.key:
        unreproduced = request.query - _REPRODUCED_OBJECT_QUERIES
        if unreproduced:
            raise NotCompactable(
                f"object request with ?{','.join(sorted(unreproduced))} on s3://{request.bucket}"
            )
        return True
    return "delete" in request.query  # DeleteObjects: a bucket-level POST that deletes objects


def kept_requests(entries: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The journal's requests other than S3 object operations, in order."""
    for entry in entries:
        request = s3_request(entry)
        if request is not None and _is_object_operation(request):
            continue
        yield entry


def check_compactable(entries: Iterator[dict[str, Any]]) -> tuple[int, int, dict[str, Any]]:
    """Read the whole journal before anything is written.

    Returns (requests, requests kept, S3 request headers by bucket from the request that
    created it); raises NotCompactable."""
    total = kept = 0
    bucket_headers: dict[str, Any] = {}
    for entry in entries:
        total += 1
        request = s3_request(entry)
        if request is not None and _is_object_operation(request):
            continue
        kept += 1
        if request is not None and not request.query and entry.get("method") == "PUT":
            headers = entry["headers"]
            bucket_headers[request.bucket] = {
                name: headers[name] for name in ("HTTP_AUTHORIZATION", "HTTP_HOST")
            }
    return total, kept, bucket_headers


def current_objects() -> Iterator[tuple[str, Any]]:
    """(bucket name, moto FakeKey) for every current object in every moto S3 backend."""
    from moto.s3.models import FakeKey, s3_backends

    for account_id in list(s3_backends.keys()):
        for partition in list(s3_backends[account_id].keys()):
            backend = s3_backends[account_id][partition]
            for bucket_name, bucket in list(backend.buckets.items()):
                for _name, key in bucket.keys.items():
                    if isinstance(key, FakeKey):  # not a delete marker
                        yield bucket_name, key


def object_put(bucket: str, key: Any, base_headers: dict[str, Any]) -> dict[str, Any]:
    """A journal entry that recreates `key` as it is now, at its LastModified."""
    value: bytes = key.value
    headers: dict[str, Any] = dict(base_headers)
    for name, header_value in dict(key.metadata).items():
        if name.lower() == "content-type":
            headers["CONTENT_TYPE"] = header_value
        else:
            headers["HTTP_" + name.upper().replace("-", "_")] = header_value
    if key.storage_class and key.storage_class != "STANDARD":
        headers["HTTP_X_AMZ_STORAGE_CLASS"] = key.storage_class
    algorithm = key.checksum_algorithm
    if algorithm and key.checksum_value and key.checksum_type != "COMPOSITE":
        headers["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = algorithm
        headers[f"HTTP_X_AMZ_CHECKSUM_{algorithm.upper()}"] = key.checksum_value
    return {
        "method": "PUT",
        "path": f"/{bucket}/{key.name}",
        "raw_uri": f"/{quote(bucket)}/{quote(key.name, safe='/~')}",
        "query": "",
        "headers": headers,
        "body": base64.b64encode(value).decode("ascii"),
        "time": key.last_modified.replace(tzinfo=UTC).timestamp(),
    }


def compacted_entries(
    entries: Iterator[dict[str, Any]], bucket_headers: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The compacted journal: kept requests, then one PUT per current object (oldest first)."""
    yield from kept_requests(entries)
    objects = sorted(current_objects(), key=lambda item: (item[1].last_modified, item[0]))
    for bucket, key in objects:
        if bucket not in bucket_headers:
            raise NotCompactable(f"bucket {bucket} has no creating request in the journal")
        yield object_put(bucket, key, bucket_headers[bucket])


@dataclass(frozen=True)
class Compaction:
    requests_before: int
    requests_after: int
    bytes_before: int
    bytes_after: int
    skipped: str = ""  # why the journal was left as it is


def compact(journal: Journal) -> Compaction:
    """Rewrite `journal` as the requests that recreate moto's current state.

    Call it right after the journal was replayed into this process's moto, before the port
    opens (nothing else changes the state meanwhile)."""
    size = journal.path.stat().st_size if journal.path.exists() else 0
    try:
        total, kept, bucket_headers = check_compactable(journal.entries())
        objects = sum(1 for _ in current_objects())
        missing = {bucket for bucket, _ in current_objects()} - set(bucket_headers)
        if missing:
            raise NotCompactable(f"no request created bucket(s) {', '.join(sorted(missing))}")
    except NotCompactable as exc:
        return Compaction(0, 0, size, size, skipped=str(exc))
    if kept + objects >= total:
        return Compaction(total, total, size, size, skipped="nothing to drop")
    journal.rewrite(compacted_entries(journal.entries(), bucket_headers))
    return Compaction(total, kept + objects, size, journal.path.stat().st_size)
