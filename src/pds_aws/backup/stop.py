"""Stop: the final sync after SIGTERM, well inside the 120 s stop timeout
(guides/BACKUP.md, "Stop").
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from pds_aws.backup import litestream
from pds_aws.backup.datadir import database_stamps, databases_on_disk
from pds_aws.backup.health import health_path
from pds_aws.backup.layout import (
    generation_prefix,
)
from pds_aws.backup.logs import error, info
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import (
    read_generation,
)
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError

# ECS allows a stop timeout of up to 120 s: the wait for Litestream's first pass over every
# changed database, then its own final sync, then the last key uploads and exit fit in it.
LITESTREAM_STOP_TIMEOUT_S = 60.0
POLL_S = 0.5
DISCOVERY_TIMEOUT_S = 45.0
# S3's clock against ours: an object stored this long before Litestream started still counts
# as written by it (only objects of the previous holder, which stopped before we took the
# lease and then restored, are older).
CLOCK_MARGIN = timedelta(seconds=1)


def wait_for_discovery(
    store: BackupStore,
    generation: str,
    data_dir: Path,
    replicator: litestream.Replicator,
    *,
    restored_stamps: dict[str, tuple[int, int]],
    since: datetime,
) -> None:
    """Before the final sync: wait until Litestream has replicated every database on disk,
    and every database changed since the restore at least once since it started.

    Litestream finds a new database a moment (up to ~2 s) after it appears, and opens each
    database at its first sync: its final sync on SIGTERM covers only the databases it knows
    and has opened. An account created just before the stop would have its row in
    account.sqlite but no store.sqlite in the backup; a write made before Litestream's first
    sync of its database (a PDS stopped right after it started) would be lost.
    """
    started = time.monotonic()
    while replicator.poll() is None:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        stamps = database_stamps(data_dir)
        changed = {
            rel
            for rel in databases_on_disk(data_dir)
            if any(stamps.get(name) != restored_stamps.get(name) for name in (rel, f"{rel}-wal"))
        }
        missing = databases_on_disk(data_dir) - set(listing.databases)
        missing |= {
            rel
            for rel in changed
            if rel in listing.databases
            and (listing.databases[rel].newest_change or since) < since - CLOCK_MARGIN
        }
        if not missing:
            return
        if time.monotonic() - started > DISCOVERY_TIMEOUT_S:
            error(
                f"{len(missing)} databases are not in the backup after "
                f"{DISCOVERY_TIMEOUT_S:.0f} s, e.g. {sorted(missing)[0]}; stopping anyway"
            )
            return
        time.sleep(POLL_S)


def final_sync(
    settings: Settings,
    mirror: FileMirror,
    replicator: litestream.Replicator,
    *,
    restored_stamps: dict[str, tuple[int, int]],
    since: datetime,
) -> int:
    """After a stop signal: unhealthy, last key uploads, every database on disk in the
    backup, then SIGTERM Litestream (its final sync). 0 when all of it succeeded."""
    exit_code = 0
    health_path(settings).unlink(missing_ok=True)
    info("stopping: final key upload and final Litestream sync")
    failures = mirror.sync()
    if failures:
        failures = mirror.sync()
    try:
        wait_for_discovery(
            mirror.store,
            mirror.generation,
            mirror.data_dir,
            replicator,
            restored_stamps=restored_stamps,
            since=since,
        )
    except StoreError as exc:
        error(f"cannot check that every database is in the backup: {exc}")
    code = replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
    if failures:
        error(f"{failures} key files could not be uploaded before stopping")
        exit_code = 1
    if code != 0:
        error(f"litestream exited with {code} on stop: its final sync may be incomplete")
        exit_code = 1
    else:
        info("stopped: final sync done")
    return exit_code
