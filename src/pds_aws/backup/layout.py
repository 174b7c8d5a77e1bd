"""What the PDS keeps on disk, and where each piece lives in the backup. Pure, no I/O.

This module is the one copy of the PDS file list in code (guides/ARCHITECTURE.md, "What the
PDS keeps on disk"):

- `account.sqlite`, `sequencer.sqlite`, `did_cache.sqlite` at the top of the data directory;
- `actors/<first 2 hex of sha256(did)>/<did>/store.sqlite`: one database per account;
- `actors/<xx>/<did>/key`: the account's signing key, a plain file written once;
- `actors/<xx>/<did>/did-op`: a pending PLC operation while an account migrates in (transient);
- `actors/reserved_keys/<did or key id>`: keys reserved before an account exists;
- `tls/...`: the direct edge's certificate and ACME account (pds_aws.direct.tls), and the
  local runtime's Caddy certificates; absent with the ALB edge.

Backup layout under `BACKUP_URL` (`s3://bucket/prefix` or `file:///path`):

    CURRENT                                   text: the id of the active generation
    generations/<id>/ORIGIN                   JSON: how this generation was made
    generations/<id>/litestream/<rel>/ltx/... Litestream 0.5 replica of database <rel>
    generations/<id>/files/<rel>              plain files (account keys, reserved keys)
    generations/<id>/FILES                    JSON: those files' bytes in one object (bundle.py)
    LEASE                                     JSON: the sidecar that may write (lease.py)

A generation id is `YYYYMMDDTHHMMSSZ-<4 hex>` (UTC creation time, sortable). ORIGIN holds
`created`, `seeded` (when it first held every database and key) with the `databases` and
`key_files` counted then, `reason` (first boot, restore-at; `first_boot` true for the first),
`source` (the generation it was restored from), `at` (restore-at's T) and `data_seen` (when a
first-boot generation first held a database). A task start continues the generation it
restored; a point-in-time restore writes a new generation and repoints CURRENT (conditionally)
only once it is complete, so no history is overwritten or deleted, and a crash at any moment
leaves CURRENT on a complete generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import PurePosixPath

TOP_LEVEL_DATABASES = ("account.sqlite", "sequencer.sqlite", "did_cache.sqlite")
ACCOUNT_DATABASE = "account.sqlite"  # holds the `actor` table: the list of live accounts
ACTORS_DIR = "actors"
RESERVED_KEYS_DIR = "reserved_keys"
TLS_DIR = "tls"
# Directories whose plain files the sidecar mirrors while running.
PLAIN_FILE_DIRS = (ACTORS_DIR, TLS_DIR)
# Caddy's lock files: held by a running process, meaningless after a restart.
_TLS_TRANSIENT_DIRS = frozenset({"locks"})
ACCOUNT_STORE = "store.sqlite"
ACCOUNT_KEY = "key"
ACCOUNT_PLC_OP = "did-op"
DATABASE_SUFFIX = ".sqlite"
# SQLite's and Litestream's working files next to a database: never copied as plain files.
_SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")

CURRENT_OBJECT = "CURRENT"
GENERATIONS_DIR = "generations"
LITESTREAM_DIR = "litestream"
FILES_DIR = "files"
ORIGIN_OBJECT = "ORIGIN"
FILES_BUNDLE_OBJECT = "FILES"

_GENERATION_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


class FileKind(Enum):
    DATABASE = "database"  # replicated by Litestream
    ACCOUNT_KEY = "account_key"  # plain file, required for every account
    ACCOUNT_FILE = "account_file"  # other plain file in an account directory (did-op)
    RESERVED_KEY = "reserved_key"  # plain file under actors/reserved_keys/
    TLS_FILE = "tls_file"  # plain file under tls/: certificate, its key, the ACME account


@dataclass(frozen=True)
class PdsFile:
    rel: str  # POSIX path relative to the data directory
    kind: FileKind
    did: str | None  # the account it belongs to, for files under actors/<xx>/<did>/

    @property
    def is_plain_file(self) -> bool:
        return self.kind is not FileKind.DATABASE

    @property
    def kept_after_removal(self) -> bool:
        """Whether its backup object stays when the file disappears from disk.

        Account keys stay: a point-in-time restore to before an account's deletion needs them,
        and which accounts exist is decided by `account.sqlite`, not by the key objects.
        Reserved keys and pending PLC operations are consumed by the PDS and removed with it.
        """
        return self.kind in (FileKind.DATABASE, FileKind.ACCOUNT_KEY)


def classify(rel: str) -> PdsFile | None:
    """Classify a data-directory path; None for anything the backup does not keep."""
    path = PurePosixPath(rel)
    parts = path.parts
    if not parts or any(p.startswith(".") or p in ("", "..") for p in parts):
        # Dot-entries are Litestream's local state (`.store.sqlite-litestream/`) or ours.
        return None
    name = parts[-1]
    if name.endswith(_SIDECAR_SUFFIXES):
        return None
    if parts[0] == TLS_DIR:
        if len(parts) < 2 or _TLS_TRANSIENT_DIRS & set(parts[1:-1]):
            return None
        return PdsFile(rel, FileKind.TLS_FILE, None)
    if parts[0] == ACTORS_DIR and len(parts) >= 3 and parts[1] == RESERVED_KEYS_DIR:
        return PdsFile(rel, FileKind.RESERVED_KEY, None)
    if parts[0] == ACTORS_DIR and len(parts) == 4 and parts[1] != RESERVED_KEYS_DIR:
        did = parts[2]
        if name == ACCOUNT_STORE:
            return PdsFile(rel, FileKind.DATABASE, did)
        if name == ACCOUNT_KEY:
            return PdsFile(rel, FileKind.ACCOUNT_KEY, did)
        if name == ACCOUNT_PLC_OP:
            return PdsFile(rel, FileKind.ACCOUNT_FILE, did)
        if name.endswith(DATABASE_SUFFIX):
            return PdsFile(rel, FileKind.DATABASE, did)
        return None
    if name.endswith(DATABASE_SUFFIX):
        # The three top-level databases, and any other database Litestream's
        # `*.sqlite` pattern replicates: what is replicated is restored.
        return PdsFile(rel, FileKind.DATABASE, None)
    return None


def new_generation_id(now: datetime, entropy: bytes) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{entropy.hex()[:4]}"


def is_generation_id(value: str) -> bool:
    return bool(_GENERATION_ID.match(value))


def generation_prefix(generation: str) -> str:
    return f"{GENERATIONS_DIR}/{generation}"


def litestream_prefix(generation: str) -> str:
    return f"{generation_prefix(generation)}/{LITESTREAM_DIR}"


def files_prefix(generation: str) -> str:
    return f"{generation_prefix(generation)}/{FILES_DIR}"


def file_key(generation: str, rel: str) -> str:
    return f"{files_prefix(generation)}/{rel}"


def origin_key(generation: str) -> str:
    return f"{generation_prefix(generation)}/{ORIGIN_OBJECT}"


def bundle_key(generation: str) -> str:
    return f"{generation_prefix(generation)}/{FILES_BUNDLE_OBJECT}"


def generation_of(key: str) -> str | None:
    """The generation id of an object key relative to the backup root, if any."""
    parts = key.split("/")
    if len(parts) >= 2 and parts[0] == GENERATIONS_DIR and is_generation_id(parts[1]):
        return parts[1]
    return None
