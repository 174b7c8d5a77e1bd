"""`run`: the contract's steps in order: lease, restore, wait for the PDS, replicate, stop.

The design, step by step: guides/BACKUP.md ("`run`, step by step").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from pds_aws.backup.datadir import (
    STAGING_PREFIX,
    database_stamps,
    databases_on_disk,
    move_into_place,
    prepare_data_dir,
)
from pds_aws.backup.generations import (
    create_generation,
    may_start_empty,
    read_current,
    read_origin,
    set_current,
)
from pds_aws.backup.health import health_path, pds_answers, wait_for_pds, write_health
from pds_aws.backup.layout import CURRENT_OBJECT, generation_prefix
from pds_aws.backup.lease import LEASE_OBJECT, Lease, LeaseKeeper
from pds_aws.backup.logs import error, info, iso_utc, warn
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import read_generation
from pds_aws.backup.replicate import Running, replicate
from pds_aws.backup.restore import RestoreFailed, restore_generation
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError, open_store


def resolve_generation(store: BackupStore) -> str:
    current = read_current(store)
    if current is not None:
        return current
    if [o for o in store.list_objects("")[:2] if o.key != LEASE_OBJECT]:
        raise StoreError(
            f"the backup prefix holds objects but no {CURRENT_OBJECT}: it is not a pds-aws "
            "backup or it is damaged; choose another BACKUP_URL prefix, or point "
            f"{CURRENT_OBJECT} at a generation with `pds-aws-backup restore-at latest "
            "--generation ID`"
        )
    # A recorded first boot: the only generation that may ever be restored empty (until
    # its first database is replicated, see `record_first_data`).
    generation = create_generation(
        store,
        {
            "reason": "first boot",
            "first_boot": True,
            "source": None,
            "at": None,
            "seeded": iso_utc(datetime.now(UTC)),
            "databases": 0,
            "key_files": 0,
        },
    )
    set_current(store, generation, replacing=None)
    info(f"first boot: empty backup, created generation {generation}")
    return generation


def run(settings: Settings, args: argparse.Namespace) -> int:
    health_path(settings).unlink(missing_ok=True)
    info(f"starting: data directory {settings.data_dir}, backup {settings.backup_url}")
    store = open_store(settings)
    lease = Lease(store, lease_s=settings.lease_s)
    try:
        store.check_access()
        # Before anything is read: the previous task may still be making its final sync.
        lease.acquire()
    except StoreError as exc:
        error(f"backup store: {exc}; not becoming healthy, the backup is untouched")
        return 1
    stop = threading.Event()
    running = Running()

    def on_lost() -> None:
        # Not ours any more: another task restores from the prefix now. Nothing more may be
        # written to it: Litestream is killed, not stopped (no final sync), and we exit 1.
        health_path(settings).unlink(missing_ok=True)
        running.kill()
        stop.set()

    keeper = LeaseKeeper(lease, on_lost)
    keeper.start()
    try:
        code = _run_holding_lease(settings, store, stop, keeper.lost, running)
    finally:
        keeper.stop()
    if keeper.lost.is_set():
        return 1
    if running.alive():
        return code  # never release while Litestream may still write
    lease.release()
    return code


def _run_holding_lease(
    settings: Settings,
    store: BackupStore,
    stop: threading.Event,
    lost: threading.Event,
    running: Running,
) -> int:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    data_dir = settings.data_dir
    staging = data_dir / f"{STAGING_PREFIX}{os.getpid()}"
    restored_stamps: dict[str, tuple[int, int]] = {}
    from_bundle: frozenset[str] = frozenset()
    try:
        generation = resolve_generation(store)
        contents = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        origin = read_origin(store, generation)
        blocking = prepare_data_dir(data_dir)
        if not contents.databases and not may_start_empty(origin):
            raise RestoreFailed(
                [
                    f"generation {generation} holds no database, but it is not a recorded "
                    f"first boot (ORIGIN records {origin.get('databases', 'no')} databases, "
                    f"reason {origin.get('reason')!r}): its data is missing. Go back to a "
                    "complete generation with `pds-aws backup restore --at` "
                    "(`pds-aws-backup restore-at latest --generation ID`)"
                ]
            )
        if not contents.is_empty:
            if blocking:
                error(
                    f"data directory {data_dir} is not empty ({', '.join(blocking[:5])}) but "
                    f"generation {generation} holds a backup: the sidecar restores only into "
                    "an empty directory, never over or beside other files; move them away (or "
                    "use an empty PDS_DATA_DIRECTORY) and start again"
                )
                return 1
            staging.mkdir()
            report = restore_generation(
                settings, store, generation, staging, contents=contents, resume=True
            )
            from_bundle = report.from_bundle
            move_into_place(staging, data_dir)
            restored_stamps = database_stamps(data_dir)
        elif blocking:
            warn(
                f"empty backup generation {generation}: adopting the {len(blocking)} existing "
                f"entries of {data_dir} as they are"
            )
        else:
            info(f"generation {generation} is empty: starting with an empty data directory")
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
    if lost.is_set():
        return 1

    # Signal handlers from here: a SIGTERM during the restore just ends us (nothing was
    # replicated yet, the backup is untouched; the lease expires).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mirror = FileMirror(store, data_dir, generation)
    mirror.adopt_restored(contents.files, contents.file_etags, from_bundle)
    on_disk = databases_on_disk(data_dir)
    first_sync: set[str] | None = None
    if on_disk:
        # Restored (or adopted) databases: Litestream starts now, and the sidecar is healthy
        # (the PDS may start and acknowledge writes) only once Litestream has synced every
        # one of them (first_sync.py): a resumed database then uploads nothing, any other is
        # in the backup whole. The PDS's migrations of these databases then never meet
        # Litestream's initial writes to them.
        first_sync = on_disk
        info(
            f"starting Litestream on the {len(on_disk)} databases on disk; healthy once it "
            "has synced each once"
        )
    elif settings.pds_health_url is not None:
        # No database yet (a first boot): the PDS creates and migrates them with busy
        # timeout 0, so Litestream may not watch the directory before the PDS answers.
        write_health(settings, None, generation)
        info(
            f"healthy: no database yet; Litestream starts once the PDS answers "
            f"{settings.pds_health_url}"
        )
        if not wait_for_pds(
            lambda: pds_answers(str(settings.pds_health_url)),
            stop,
            url=settings.pds_health_url,
            on_tick=mirror.sync,
        ):
            if lost.is_set():
                return 1
            if not databases_on_disk(data_dir):
                # Nothing the PDS could have written: the backup holds exactly this.
                info("stopped before the PDS started; no database on disk")
                health_path(settings).unlink(missing_ok=True)
                failures = mirror.sync() and mirror.sync()  # one retry, as at any stop
                if failures:
                    error(f"{failures} key files could not be uploaded before stopping")
                return 1 if failures else 0
            info("stopped before the PDS answered: replicating the databases on disk first")
    # The restored generation is continued: Litestream resumes each database's replica at
    # its restored position (resume.py; or, where it could not, fetches the replica's
    # position and writes the database once more), so no new generation is seeded.
    first_data_pending = not contents.databases
    return replicate(
        settings,
        store,
        generation,
        mirror,
        stop,
        lost,
        running,
        first_data_pending,
        restored_stamps,
        first_sync,
    )
