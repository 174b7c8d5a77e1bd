"""The generation's plain files in one object, so that a restore fetches them in one GET
(guides/BACKUP.md, "`run`, step by step", 3 and 5). Pure, no I/O.

Each plain file (account key, reserved key, TLS file) is its own object under
`generations/<id>/files/`, and those objects are the truth. Beside them `FILES` holds every
one's bytes with the ETag its own object had when those bytes were uploaded. A restore takes a
file from `FILES` only when that ETag is the one the listing reports for its object now, so
`FILES` may lag (a crash between a key's upload and the next `FILES`), be missing (a backup
written before it existed) or be unreadable: those files are fetched one by one, as before.
With 1,000 accounts that is one GET instead of 1,000.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Bundled:
    etag: str  # its own object's ETag when these bytes were uploaded
    data: bytes


def encode(entries: Mapping[str, Bundled]) -> bytes:
    body = {
        "version": FORMAT_VERSION,
        "files": {
            rel: {"etag": entry.etag, "data": base64.b64encode(entry.data).decode()}
            for rel, entry in sorted(entries.items())
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict[str, Bundled]:
    """The entries of a `FILES` object; none when it is unreadable or of another version
    (the files are then fetched one by one)."""
    try:
        body = json.loads(raw)
        if body.get("version") != FORMAT_VERSION:
            return {}
        return {
            str(rel): Bundled(str(entry["etag"]), base64.b64decode(entry["data"], validate=True))
            for rel, entry in body["files"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        return {}


def current_bytes(entries: Mapping[str, Bundled], etags: Mapping[str, str]) -> dict[str, bytes]:
    """The bundled bytes that are exactly their object's now: the same ETag as listed."""
    return {
        rel: entry.data
        for rel, entry in entries.items()
        if rel in etags and etags[rel] == entry.etag
    }
