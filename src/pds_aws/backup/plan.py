"""Pure decisions of the sidecar: replica URLs, the Litestream config, the restore plan.

Deleted accounts (decision): the list of live accounts is the `actor` table of the restored
`account.sqlite`, the PDS's own record. The PDS deletes the `actor` row and then removes the
account directory; Litestream keeps the old account's objects, so the restore plan skips every
account directory whose DID is not in `actor`. This needs no extra object, survives a crash at
any moment (the row and the directory are replicated independently, the row decides), and makes
a point-in-time restore bring back exactly the accounts that existed at that time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pds_aws.backup.layout import (
    ACCOUNT_DATABASE,
    DATABASE_SUFFIX,
    FileKind,
    bundle_key,
    classify,
    files_prefix,
    litestream_prefix,
)
from pds_aws.backup.settings import DEFAULT_HISTORY_DAYS, BackupUrl, Settings
from pds_aws.errors import PdsAwsError

# Litestream settings, in one place. Facts from Litestream 0.5's source (store.go, db.go,
# replica.go, compactor.go) that decide them:
# - Loss window: the database monitor turns new WAL frames into one L0 file (one TXID) per
#   MONITOR_INTERVAL; the replica uploads the pending ones at its next SYNC_INTERVAL tick. A
#   commit is at risk for at most MONITOR_INTERVAL + SYNC_INTERVAL + one upload (~0.5 s here;
#   at 1 s it was 1.25 s, and 1.05 s of commits were lost at worst). Uploads are one PUT per
#   L0 file, so a shorter SYNC_INTERVAL adds no request; an idle replica tick compares two
#   positions in memory and makes none. SIGTERM loses nothing (final sync).
# - Idle requests: each compaction level ticks for every database on wall-clock multiples of
#   its interval, and an unchanged database still costs one LIST per tick (Store.CompactDB
#   compares the source level's max TXID with the destination's *min* TXID, so it falls
#   through to listing the source level). Litestream's default levels (30 s, 5 min, 1 h) are
#   ~133 LISTs per database per hour; one L1 level every 6 h is 4 a day. The snapshot tick
#   (daily) lists the snapshot and L1 levels to enforce retention (2 LISTs), and the L0
#   retention monitor lists L1 and L0 per check (2 LISTs): with daily checks ~8 LISTs per
#   idle database per day, ~68 an hour for 200 accounts (203 databases).
# - Restore: L0 files wait for the next L1 compaction (up to 6 h), which removes the
#   compacted ones older than L0_RETENTION. A restore applies snapshot + L1 + the L0 files
#   since the last compaction: at most 6 h of L0 files per database (only databases written
#   in that time have any). A point in time within those 6 h restores to the exact sync;
#   older points to the 6-hourly L1 files, back to `history_days` (snapshot_retention).
MONITOR_INTERVAL = "250ms"
SYNC_INTERVAL = "250ms"
COMPACTION_LEVELS = ("6h",)  # L1, L2...: one level; each level costs a LIST per database per tick
SNAPSHOT_INTERVAL_HOURS = 24
SNAPSHOT_INTERVAL = f"{SNAPSHOT_INTERVAL_HOURS}h"
L0_RETENTION = "5m"
# Compacting into L1 already enforces L0 retention; the separate check only sweeps the rest.
L0_RETENTION_CHECK_INTERVAL = "24h"
LITESTREAM_PATTERN = "*.sqlite"
# Directories in the data directory the sidecar tolerates at start (a fresh ext4 volume has one).
IGNORED_AT_START = frozenset({"lost+found"})
# The sidecar's own scratch entries in the data directory (restore staging, fetched LTX files).
SCRATCH_PREFIX = ".pds-aws-"


class InvalidTimestamp(PdsAwsError, ValueError):
    pass


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the backup root
    size: int
    last_modified: datetime
    etag: str | None = None  # S3's; None from a file store


@dataclass
class DatabaseBackup:
    objects: int = 0
    bytes: int = 0
    newest_change: datetime | None = None
    # (object key relative to the backup root, path in a file replica of this database,
    # when it was stored: Litestream picks files for a point in time by that time)
    ltx_files: list[tuple[str, str, datetime]] = field(default_factory=list)


@dataclass
class GenerationContents:
    """What one generation holds, read from a listing of `generations/<id>/`."""

    databases: dict[str, DatabaseBackup] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # rel -> size
    file_etags: dict[str, str] = field(default_factory=dict)  # rel -> its object's ETag
    has_bundle: bool = False  # FILES is listed (bundle.py)
    unknown: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.databases and not self.files


@dataclass
class RestorePlan:
    databases: list[str]
    files: list[str]
    accounts: list[str]  # DIDs restored
    deleted_accounts: list[str]  # DIDs with objects but no `actor` row: not restored
    problems: list[str]
    accounts_without_store: list[str] = field(default_factory=list)


def replica_url(
    backup: BackupUrl,
    generation: str,
    rel: str | None,
    *,
    endpoint: str | None,
    region: str | None,
) -> str:
    """Litestream replica URL of one database (`rel`) or of the whole directory (None)."""
    path = litestream_prefix(generation) + (f"/{rel}" if rel else "")
    if backup.scheme == "file":
        return f"file://{backup.prefix.rstrip('/')}/{path}"
    key = f"{backup.prefix}/{path}" if backup.prefix else path
    query: dict[str, str] = {}
    if endpoint:
        query["endpoint"] = endpoint
    if region:
        query["region"] = region
    if endpoint:
        # Emulators (moto) serve buckets by path, not by virtual host.
        query["forcePathStyle"] = "true"
    return f"s3://{backup.bucket}/{key}" + (f"?{urlencode(query)}" if query else "")


def settings_replica_url(settings: Settings, generation: str, rel: str | None = None) -> str:
    """replica_url in the sidecar's backup location (its URL, S3 endpoint and region)."""
    return replica_url(
        settings.backup_url, generation, rel, endpoint=settings.s3_endpoint, region=settings.region
    )


def snapshot_retention(history_days: int) -> str:
    """Litestream's snapshot retention for a history of `history_days`.

    Litestream deletes snapshots older than the retention, and the L1 files older than the
    oldest snapshot it keeps: a point `history_days` ago needs a snapshot at or before it, so
    the retention is the history plus one snapshot interval (24 h retention, as before, cut
    the history to about a day)."""
    return f"{history_days * 24 + SNAPSHOT_INTERVAL_HOURS}h"


def litestream_config(
    data_dir: str, directory_replica_url: str, history_days: int = DEFAULT_HISTORY_DAYS
) -> dict[str, Any]:
    """Litestream 0.5 directory mode: every `*.sqlite` under the data dir, found as it appears.

    Written as JSON, which Litestream's YAML reader accepts; run with `-no-expand-env`.
    """
    return {
        "levels": [{"interval": interval} for interval in COMPACTION_LEVELS],
        "snapshot": {"interval": SNAPSHOT_INTERVAL, "retention": snapshot_retention(history_days)},
        "l0-retention": L0_RETENTION,
        "l0-retention-check-interval": L0_RETENTION_CHECK_INTERVAL,
        "dbs": [
            {
                "dir": data_dir,
                "pattern": LITESTREAM_PATTERN,
                "recursive": True,
                "watch": True,
                "monitor-interval": MONITOR_INTERVAL,
                "replica": {"url": directory_replica_url, "sync-interval": SYNC_INTERVAL},
            }
        ],
    }


def read_generation(objects: Iterable[StoredObject], generation: str) -> GenerationContents:
    """Group a listing of the generation's objects by database and plain file."""
    ls_root = litestream_prefix(generation) + "/"
    files_root = files_prefix(generation) + "/"
    contents = GenerationContents()
    for obj in objects:
        if obj.key.startswith(ls_root):
            rel = database_of_ltx_key(obj.key[len(ls_root) :])
            if rel is None:
                contents.unknown.append(obj.key)
                continue
            db = contents.databases.setdefault(rel, DatabaseBackup())
            local = file_replica_path(obj.key[len(ls_root) + len(rel) + 1 :])
            if local is None:
                contents.unknown.append(obj.key)
                continue
            db.ltx_files.append((obj.key, local, obj.last_modified))
            db.objects += 1
            db.bytes += obj.size
            if db.newest_change is None or obj.last_modified > db.newest_change:
                db.newest_change = obj.last_modified
        elif obj.key.startswith(files_root):
            contents.files[obj.key[len(files_root) :]] = obj.size
            if obj.etag is not None:
                contents.file_etags[obj.key[len(files_root) :]] = obj.etag
        elif obj.key == bundle_key(generation):
            contents.has_bundle = True
        else:
            contents.unknown.append(obj.key)
    return contents


def database_of_ltx_key(key: str) -> str | None:
    """The database path of a Litestream object key below the replica root.

    Litestream 0.5 names them `<db>/<level, 4 hex>/<txids>.ltx` on S3 and
    `<db>/ltx/<level>/<txids>.ltx` in a file replica; `<db>` is the path relative to `dir`.
    """
    parts = key.split("/")
    if not parts[-1].endswith(".ltx"):
        return None
    for end in range(len(parts) - 2, 0, -1):
        if parts[end - 1].endswith(DATABASE_SUFFIX):
            return "/".join(parts[:end])
    return None


def file_replica_path(below_database: str) -> str | None:
    """Where an LTX object of one database goes in a Litestream *file* replica of it.

    S3 names levels with 4 hex digits (`0009/<txids>.ltx`), a file replica `ltx/9/<txids>.ltx`.
    The sidecar downloads a generation's objects in bulk and restores from such a local replica:
    one listing and parallel GETs instead of a dozen LISTs per database from each restore.
    """
    parts = below_database.split("/")
    if len(parts) == 3 and parts[0] == "ltx" and parts[1].isdigit():
        level, name = int(parts[1]), parts[2]
    elif len(parts) == 2:
        try:
            level, name = int(parts[0], 16), parts[1]
        except ValueError:
            return None
    else:
        return None
    if not name.endswith(".ltx") or "/" in name or name.startswith("."):
        return None
    return f"ltx/{level}/{name}"


def build_restore_plan(
    contents: GenerationContents, live_dids: frozenset[str] | None
) -> RestorePlan:
    """Decide what to restore. `live_dids`: the restored `actor` table, None if no account db.

    Problems (any one fails the restore closed): an account listed in `account.sqlite` without
    its store or its key in the backup, and account stores without any `account.sqlite`.
    """
    top_databases: list[str] = []
    top_files: list[str] = []
    store_of: dict[str, str] = {}
    files_of: dict[str, list[str]] = {}
    has_key: set[str] = set()
    for rel in sorted(contents.databases):
        pds_file = classify(rel)
        if pds_file is None:
            continue
        if pds_file.did is None:
            top_databases.append(rel)
        else:
            store_of[pds_file.did] = rel
    for rel in sorted(contents.files):
        pds_file = classify(rel)
        if pds_file is None or pds_file.kind is FileKind.DATABASE:
            continue
        if pds_file.did is None:
            top_files.append(rel)
            continue
        files_of.setdefault(pds_file.did, []).append(rel)
        if pds_file.kind is FileKind.ACCOUNT_KEY:
            has_key.add(pds_file.did)

    problems: list[str] = []
    with_objects = set(store_of) | set(files_of)
    if live_dids is None:
        live = frozenset[str]()
        if with_objects:
            problems.append(
                f"{ACCOUNT_DATABASE} is not in the backup but {len(with_objects)} account "
                "directories are: the list of live accounts is unknown"
            )
    else:
        live = live_dids
    databases = list(top_databases)
    files = list(top_files)
    without_store: list[str] = []
    for did in sorted(live):
        if did not in store_of:
            without_store.append(did)
            problems.append(
                f"account {did} is in {ACCOUNT_DATABASE} but its store.sqlite is not in the backup"
            )
        else:
            databases.append(store_of[did])
        if did not in has_key:
            problems.append(f"account {did} has no key file in the backup (actors/.../{did}/key)")
        files.extend(files_of.get(did, []))
    return RestorePlan(
        databases=databases,
        files=files,
        accounts=sorted(live),
        deleted_accounts=sorted(with_objects - live),
        problems=problems,
        accounts_without_store=without_store,
    )


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 time with a zone (`2026-11-29T20:15:00Z`), as an aware UTC datetime."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidTimestamp(
            f"TIMESTAMP {value!r} is not an RFC 3339 time with a zone; "
            "use e.g. 2026-11-29T20:15:00Z or `latest`"
        )
    return parsed.astimezone(UTC)


def restore_timestamp(at: datetime | None, newest_change: datetime | None) -> str | None:
    """The `-timestamp` to restore a database as of `at`; None means its latest state.

    Litestream 0.5.17 answers "timestamp does not exist" when no LTX file of the database is
    newer than the timestamp, although its latest state is then exactly the state at that
    time: a database whose newest object was stored at or before `at` is restored latest.
    """
    if at is None or (newest_change is not None and newest_change <= at):
        return None
    return litestream_timestamp(at)


def litestream_timestamp(moment: datetime) -> str:
    """The `-timestamp` argument Litestream expects (RFC 3339, UTC, nanoseconds allowed)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unexpected_at_start(entries: Iterable[str]) -> list[str]:
    """Entries of the data directory that make it 'not empty' for a restore."""
    return sorted(
        e for e in entries if e not in IGNORED_AT_START and not e.startswith(SCRATCH_PREFIX)
    )


def counts_by_kind(rels: Iterable[str]) -> Mapping[FileKind, int]:
    counts: dict[FileKind, int] = {}
    for rel in rels:
        pds_file = classify(rel)
        if pds_file is not None:
            counts[pds_file.kind] = counts.get(pds_file.kind, 0) + 1
    return counts


@dataclass(frozen=True)
class RestoredPoint:
    """The moment a point-in-time restore actually reached, which may be before the one asked.

    Each database is restored from its newest file stored at or before `at`. If the database
    has a later file too, its changes between that file and `at` were in files that compaction
    has since merged into the later one: the database is as of its newest file, not `at`. Within
    the L0 window the files are one per sync (about a second apart); beyond it, one per L1
    compaction (COMPACTION_LEVELS).
    """

    asked: datetime
    point: datetime  # every restored database is at least as recent as this
    behind: tuple[str, ...]  # databases restored to a moment before `asked`


def restored_point(
    contents: GenerationContents, databases: Iterable[str], at: datetime
) -> RestoredPoint:
    point = at
    behind: list[str] = []
    for rel in sorted(databases):
        backup = contents.databases.get(rel)
        if backup is None:
            continue
        stored = [when for _key, _local, when in backup.ltx_files]
        before = [when for when in stored if when <= at]
        if before and any(when > at for when in stored):
            newest = max(before)
            if newest < at:
                behind.append(rel)
                point = min(point, newest)
    return RestoredPoint(asked=at, point=point, behind=tuple(behind))
