"""Litestream's first pass after a restore, before the sidecar reports healthy
(guides/BACKUP.md, "Start: Litestream's first pass").

A restored database has no Litestream state on disk, so Litestream 0.5 first reads the
replica's newest level-0 file (`checkDatabaseBehindReplica`: a LIST and a GET), then its first
sync writes the whole database as a new level-0 file after the replica's position and uploads
it. Until that upload, nothing written to the database since the restore is in the backup.
With hundreds of databases the pass takes seconds (each database is a few requests, all at
once), so the sidecar reports healthy, and the PDS may acknowledge writes, only once every
database on disk is in the backup beyond the position it was restored from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum

from pds_aws.backup.fetch import max_txid
from pds_aws.backup.layout import generation_prefix
from pds_aws.backup.logs import error, info
from pds_aws.backup.plan import GenerationContents, read_generation
from pds_aws.backup.store import BackupStore, StoreError

POLL_S = 1.0  # one LIST of the generation per poll, at most
# The poll's LIST pages take at most a third of the time: listing a large generation is slow
# exactly when the store is busy with Litestream's first pass, and must not slow it further.
LISTING_SHARE = 3.0
PROGRESS_S = 15.0
# A pass that has not ended by then will not: the sidecar exits 1 and is never healthy. On ECS
# the backup container's health-check start period (300 s) usually ends it first (the task is
# replaced); the allowance per database is for large adoptions and slow emulated stores.
TIMEOUT_S = 180.0
TIMEOUT_PER_DATABASE_S = 1.0


def pass_timeout(databases: int) -> float:
    return TIMEOUT_S + TIMEOUT_PER_DATABASE_S * databases


class Outcome(Enum):
    DONE = "done"
    STOPPED = "stopped"  # a stop signal or a lost lease: the caller's stop path decides
    EXITED = "exited"  # Litestream exited
    TIMED_OUT = "timed out"


def replica_positions(contents: GenerationContents) -> dict[str, int]:
    """Each database's position in the backup: the highest TXID of its LTX objects."""
    return {rel: max_txid(db.ltx_files) for rel, db in contents.databases.items()}


def behind(expected: Mapping[str, int], now: Mapping[str, int]) -> list[str]:
    """The databases not yet in the backup beyond the position they were restored from
    (0: not in the backup at all, an adopted database)."""
    return sorted(rel for rel, txid in expected.items() if now.get(rel, 0) <= txid)


def expected_positions(on_disk: Iterable[str], restored: GenerationContents) -> dict[str, int]:
    """What the first pass must pass, for every database on disk when Litestream starts."""
    positions = replica_positions(restored)
    return {rel: positions.get(rel, 0) for rel in on_disk}


def next_poll_delay(poll: float, listing_s: float) -> float:
    """How long to wait before the next poll, after a listing that took `listing_s`."""
    return max(poll, (LISTING_SHARE - 1.0) * listing_s)


def wait_first_pass(
    store: BackupStore,
    generation: str,
    expected: Mapping[str, int],
    *,
    stop: threading.Event,
    litestream_exited: Callable[[], bool],
    poll: float = POLL_S,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Poll the generation until every database of `expected` is past its position."""
    timeout = pass_timeout(len(expected)) if timeout is None else timeout
    started = clock()
    next_report = started + PROGRESS_S
    pending = sorted(expected)
    while True:
        if stop.is_set():
            return Outcome.STOPPED
        if litestream_exited():
            return Outcome.EXITED
        listed_at = clock()
        try:
            listing = read_generation(
                store.list_objects(generation_prefix(generation) + "/"), generation
            )
            pending = behind(expected, replica_positions(listing))
        except StoreError as exc:
            error(f"cannot list the backup during Litestream's first pass, retrying: {exc}")
        listing_s = clock() - listed_at
        elapsed = clock() - started
        if not pending:
            info(
                f"Litestream's first pass: {len(expected)} databases in the backup after "
                f"{elapsed:.1f} s"
            )
            return Outcome.DONE
        if elapsed > timeout:
            error(
                f"Litestream's first pass: {len(pending)} of {len(expected)} databases still "
                f"not in the backup after {timeout:.0f} s (e.g. {pending[0]}); not becoming "
                "healthy: the PDS would acknowledge writes that are not backed up"
            )
            return Outcome.TIMED_OUT
        if clock() >= next_report:
            info(
                f"Litestream's first pass: {len(pending)} of {len(expected)} databases not yet "
                f"in the backup ({elapsed:.0f} s)"
            )
            next_report = clock() + PROGRESS_S
        stop.wait(next_poll_delay(poll, listing_s))
