"""Seed and replicate: Litestream in directory mode into the new generation
(guides/BACKUP.md, "Seed and replicate").
"""

from __future__ import annotations

import os
import threading
import time

from pds_aws.backup import litestream
from pds_aws.backup.generations import mark_seeded, read_current, set_current
from pds_aws.backup.health import health_path, write_health
from pds_aws.backup.layout import (
    generation_prefix,
)
from pds_aws.backup.logs import error, info, log
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import (
    read_generation,
    replica_url,
)
from pds_aws.backup.restore import RestoreReport
from pds_aws.backup.settings import Settings
from pds_aws.backup.stop import LITESTREAM_STOP_TIMEOUT_S, POLL_S, final_sync
from pds_aws.backup.store import BackupStore, StoreError
from pds_aws.errors import PdsAwsError

MIRROR_INTERVAL_S = 0.5
LITESTREAM_READY_TIMEOUT_S = 10.0
SEED_TIMEOUT_S = 600.0
LITESTREAM_CONFIG_FILE = "litestream.json"


def replicate(
    settings: Settings,
    store: BackupStore,
    source: str,
    generation: str,
    restored: RestoreReport | None,
    mirror: FileMirror,
    stop: threading.Event,
    pds_may_write: bool,
) -> int:
    """Start Litestream, seed the new generation (after a restore), replicate until stopped."""
    data_dir = settings.data_dir
    config_path = settings.state_dir / LITESTREAM_CONFIG_FILE
    directory_url = replica_url(
        settings.backup_url,
        generation,
        None,
        endpoint=settings.s3_endpoint,
        region=settings.region,
    )
    litestream.write_config(config_path, data_dir, directory_url)
    replicator = litestream.Replicator(
        settings.litestream_bin,
        config_path,
        env=litestream.litestream_env(os.environ),
        log=log,
    )
    if not replicator.ready.wait(LITESTREAM_READY_TIMEOUT_S) and replicator.poll() is not None:
        health_path(settings).unlink(missing_ok=True)
        error(f"litestream exited with {replicator.poll()} at start; the task must be replaced")
        return 1
    if pds_may_write:
        write_health(settings, replicator.pid, generation)
    if restored is not None and restored.plan is not None:
        try:
            seed_generation(
                store,
                generation,
                set(restored.plan.databases),
                mirror,
                replicator,
                None if pds_may_write else stop,
            )
        except (StoreError, SeedFailed) as exc:
            health_path(settings).unlink(missing_ok=True)
            error(
                f"seeding generation {generation} failed: {exc}; the task must be replaced. "
                f"CURRENT still names {source}, which is complete as restored"
                f"{' (without what the PDS wrote since this start)' if pds_may_write else ''}; "
                "the next start retries"
            )
            replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
            return 1
        try:
            moved = read_current(store)
        except StoreError as exc:
            moved = f"unreadable ({exc})"
        if moved != source:
            # An operator's restore-at ran meanwhile: theirs wins, this task must not serve.
            health_path(settings).unlink(missing_ok=True)
            error(
                f"CURRENT changed to {moved} while this task restored {source}; not "
                "healthy: replace the task so it restores the new CURRENT"
            )
            replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
            return 1
        set_current(store, generation)
        info(f"generation {generation} holds every database and key: CURRENT points at it")
    else:
        mirror.sync()  # adopted files, if any
    write_health(settings, replicator.pid, generation)
    info(f"{'' if pds_may_write else 'healthy: '}replicating {data_dir} to generation {generation}")
    return replicate_until_stopped(settings, stop, mirror, replicator)


class SeedFailed(PdsAwsError):
    pass


def seed_generation(
    store: BackupStore,
    generation: str,
    databases: set[str],
    mirror: FileMirror,
    replicator: litestream.Replicator,
    stop: threading.Event | None,
) -> None:
    """Wait until Litestream has a first snapshot of every restored database in the new
    generation, and upload every key file to it. `stop` None: a stop signal does not end the
    wait (the PDS may have written: the final sync needs the new generation complete)."""
    started = time.monotonic()
    if mirror.sync():
        raise SeedFailed("could not upload every key file")
    while True:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        missing = databases - set(listing.databases)
        if not missing:
            break
        if replicator.poll() is not None:
            raise SeedFailed(f"litestream exited with {replicator.poll()}")
        if stop is not None and stop.is_set():
            raise SeedFailed("stopped by a signal")
        if time.monotonic() - started > SEED_TIMEOUT_S:
            raise SeedFailed(
                f"{len(missing)} databases not replicated after {SEED_TIMEOUT_S:.0f} s, "
                f"e.g. {sorted(missing)[0]}"
            )
        time.sleep(POLL_S)
    mark_seeded(store, generation)
    info(
        f"seeded generation {generation}: {len(databases)} databases and "
        f"{len(mirror.seen)} key files in {time.monotonic() - started:.2f} s"
    )


def replicate_until_stopped(
    settings: Settings,
    stop: threading.Event,
    mirror: FileMirror,
    replicator: litestream.Replicator,
) -> int:
    """Mirror key files until a stop signal, then make the final sync (see `stop`)."""
    while not stop.wait(MIRROR_INTERVAL_S):
        mirror.sync()
        code = replicator.poll()
        if code is not None:
            error(f"litestream exited unexpectedly with {code}; the task must be replaced")
            health_path(settings).unlink(missing_ok=True)
            mirror.sync()
            return 1
    return final_sync(settings, mirror, replicator)
