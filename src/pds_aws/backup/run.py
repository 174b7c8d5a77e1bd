"""`run`: the contract's steps in order: restore, wait for the PDS, seed and replicate, stop.

The design, step by step: guides/BACKUP.md ("`run`, step by step").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import threading
from types import FrameType

from pds_aws.backup.datadir import (
    STAGING_PREFIX,
    database_stamps,
    databases_on_disk,
    move_into_place,
    prepare_data_dir,
)
from pds_aws.backup.generations import create_generation, mark_seeded, read_current, set_current
from pds_aws.backup.health import health_path, pds_answers, wait_for_pds, write_health
from pds_aws.backup.layout import (
    CURRENT_OBJECT,
    generation_prefix,
)
from pds_aws.backup.logs import error, info, warn
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import (
    read_generation,
)
from pds_aws.backup.replicate import replicate
from pds_aws.backup.restore import RestoreFailed, RestoreReport, restore_generation
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError, open_store


def resolve_generation(store: BackupStore) -> str:
    current = read_current(store)
    if current is not None:
        return current
    if store.list_objects("")[:1]:
        raise StoreError(
            f"the backup prefix holds objects but no {CURRENT_OBJECT}: it is not a pds-aws "
            "backup or it is damaged; choose another BACKUP_URL prefix, or point "
            f"{CURRENT_OBJECT} at a generation with `pds-aws-backup restore-at latest "
            "--generation ID`"
        )
    generation = create_generation(store, {"reason": "first boot", "source": None, "at": None})
    mark_seeded(store, generation)
    set_current(store, generation)
    info(f"first boot: empty backup, created generation {generation}")
    return generation


def run(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    data_dir = settings.data_dir
    health_path(settings).unlink(missing_ok=True)
    info(f"starting: data directory {data_dir}, backup {settings.backup_url}")
    store = open_store(settings)
    staging = data_dir / f"{STAGING_PREFIX}{os.getpid()}"
    restored: RestoreReport | None = None
    restored_stamps: dict[str, tuple[int, int]] = {}
    try:
        store.check_access()
        source = resolve_generation(store)
        contents = read_generation(store.list_objects(generation_prefix(source) + "/"), source)
        blocking = prepare_data_dir(data_dir)
        if not contents.is_empty:
            if blocking:
                error(
                    f"data directory {data_dir} is not empty ({', '.join(blocking[:5])}) but "
                    f"generation {source} holds a backup: the sidecar restores only into an "
                    "empty directory, never over or beside other files; move them away (or "
                    "use an empty PDS_DATA_DIRECTORY) and start again"
                )
                return 1
            staging.mkdir()
            restored = restore_generation(settings, store, source, staging)
            move_into_place(staging, data_dir)
            restored_stamps = database_stamps(data_dir)
        elif blocking:
            warn(
                f"empty backup generation {source}: adopting the {len(blocking)} existing "
                f"entries of {data_dir} as they are"
            )
        else:
            info(f"generation {source} is empty: starting with an empty data directory")
        # A restored directory is replicated into a NEW generation, seeded from scratch by
        # this Litestream process: each generation is written by exactly one Litestream
        # lifetime from TXID 1, so no restarted Litestream ever has to reconcile its position
        # with a replica it did not write ("database behind replica"), and the generation we
        # restored from stays as it was (history for restore-at).
        generation = (
            source
            if restored is None
            else create_generation(store, {"reason": "task start", "source": source, "at": None})
        )
    except RestoreFailed as exc:
        shutil.rmtree(staging, ignore_errors=True)
        for problem in exc.problems:
            error(f"restore failed: {problem}")
        error(
            f"restore of {settings.backup_url} failed ({len(exc.problems)} problems); not "
            "becoming healthy and not replicating, the backup is untouched. Fix the cause "
            "above, or run `pds-aws-backup drill` to inspect, or go back with `restore-at`"
        )
        return 1
    except StoreError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        error(f"backup store: {exc}; not becoming healthy, the backup is untouched")
        return 1
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        error(f"restore failed on the data directory: {exc}; not becoming healthy")
        return 1

    # Signal handlers from here: a SIGTERM during the restore just ends us (nothing was
    # replicated yet, the backup is untouched).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mirror = FileMirror(store, data_dir, generation)
    # The PDS may write from the moment we are healthy: from then on a stop signal must not
    # abandon the seeding of the new generation (CURRENT would keep naming the old one).
    pds_may_write = False
    if settings.pds_health_url is not None:
        write_health(settings, None, generation)
        pds_may_write = True
        info(
            f"healthy: restored {data_dir}; Litestream starts once the PDS answers "
            f"{settings.pds_health_url}"
        )
        if not wait_for_pds(
            lambda: pds_answers(str(settings.pds_health_url)),
            stop,
            url=settings.pds_health_url,
            on_tick=mirror.sync,
        ):
            if not databases_on_disk(data_dir) or (
                restored is not None and database_stamps(data_dir) == restored_stamps
            ):
                # Nothing the PDS could have written: the backup holds exactly this (no new
                # generation is seeded for a PDS that failed to start, e.g. in a crash loop).
                info("stopped before the PDS started; no database changed since the restore")
                health_path(settings).unlink(missing_ok=True)
                failures = mirror.sync() and mirror.sync()  # one retry, as at any stop
                if failures:
                    error(f"{failures} key files could not be uploaded before stopping")
                return 1 if failures else 0
            info("stopped before the PDS answered: replicating the databases on disk first")
    return replicate(settings, store, source, generation, restored, mirror, stop, pds_may_write)
