"""Stop: the final sync after SIGTERM, well inside the 120 s stop timeout
(guides/BACKUP.md, "Stop").
"""

from __future__ import annotations

import time
from pathlib import Path

from pds_aws.backup import litestream
from pds_aws.backup.datadir import databases_on_disk
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

# ECS allows a stop timeout of up to 120 s; leave room for the last key uploads and exit.
LITESTREAM_STOP_TIMEOUT_S = 90.0
POLL_S = 0.5
DISCOVERY_TIMEOUT_S = 20.0  # of the 120 s ECS stop timeout; Litestream needs ~2 s at most


def wait_for_discovery(
    store: BackupStore, generation: str, data_dir: Path, replicator: litestream.Replicator
) -> None:
    """Before the final sync: wait until Litestream replicates every database on disk.

    Litestream finds a new database a moment (up to ~2 s) after it appears, and its final sync
    on SIGTERM covers only the databases it knows: an account created just before the stop
    would have its row in account.sqlite but no store.sqlite in the backup.
    """
    started = time.monotonic()
    while replicator.poll() is None:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        missing = databases_on_disk(data_dir) - set(listing.databases)
        if not missing:
            return
        if time.monotonic() - started > DISCOVERY_TIMEOUT_S:
            error(
                f"{len(missing)} databases are not in the backup after "
                f"{DISCOVERY_TIMEOUT_S:.0f} s, e.g. {sorted(missing)[0]}; stopping anyway"
            )
            return
        time.sleep(POLL_S)


def final_sync(settings: Settings, mirror: FileMirror, replicator: litestream.Replicator) -> int:
    """After a stop signal: unhealthy, last key uploads, every database on disk in the
    backup, then SIGTERM Litestream (its final sync). 0 when all of it succeeded."""
    exit_code = 0
    health_path(settings).unlink(missing_ok=True)
    info("stopping: final key upload and final Litestream sync")
    failures = mirror.sync()
    if failures:
        failures = mirror.sync()
    try:
        wait_for_discovery(mirror.store, mirror.generation, mirror.data_dir, replicator)
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
