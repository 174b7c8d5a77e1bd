"""Replicate: Litestream in directory mode into the current generation, key files beside it
(guides/BACKUP.md, "Replicate").
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

from pds_aws.backup import litestream
from pds_aws.backup.first_sync import Outcome, wait_first_sync
from pds_aws.backup.generations import record_first_data
from pds_aws.backup.health import health_path, write_health
from pds_aws.backup.layout import generation_prefix
from pds_aws.backup.logs import error, info, log
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import read_generation, settings_replica_url
from pds_aws.backup.prune import prune_in_background
from pds_aws.backup.settings import Settings
from pds_aws.backup.stop import LITESTREAM_STOP_TIMEOUT_S, final_sync
from pds_aws.backup.store import BackupStore, StoreError

MIRROR_INTERVAL_S = 0.5
LITESTREAM_READY_TIMEOUT_S = 10.0
LITESTREAM_CONFIG_FILE = "litestream.json"
# On a first boot, how often to look for the first replicated database (then never again).
FIRST_DATA_POLL_S = 5.0


class Running:
    """The Litestream child, once started: the lease keeper kills it when the lease is lost."""

    def __init__(self) -> None:
        self.replicator: litestream.Replicator | None = None
        self._lock = threading.Lock()
        self._killed = False

    def set(self, replicator: litestream.Replicator) -> bool:
        """False when the lease was lost meanwhile (the caller must not go on)."""
        with self._lock:
            self.replicator = replicator
            if self._killed:
                replicator.process.kill()
            return not self._killed

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self.replicator is not None and self.replicator.poll() is None:
                self.replicator.process.kill()

    def alive(self) -> bool:
        return self.replicator is not None and self.replicator.poll() is None


def replicate(
    settings: Settings,
    store: BackupStore,
    generation: str,
    mirror: FileMirror,
    stop: threading.Event,
    lost: threading.Event,
    running: Running,
    first_data_pending: bool,
    restored_stamps: dict[str, tuple[int, int]],
    first_sync: set[str] | None = None,
) -> int:
    """Start Litestream on the generation, replicate until stopped, then the final sync.

    `first_sync`: the databases on disk; healthy only once Litestream has synced each once
    (first_sync.py). None: healthy once Litestream runs.
    """
    data_dir = settings.data_dir
    config_path = settings.state_dir / LITESTREAM_CONFIG_FILE
    directory_url = settings_replica_url(settings, generation)
    control = litestream.control_socket(settings.state_dir)
    litestream.write_config(
        config_path, data_dir, directory_url, settings.history_days, control=control
    )
    since = datetime.now(UTC)
    replicator = litestream.Replicator(
        settings.litestream_bin,
        config_path,
        env=litestream.litestream_env(os.environ),
        log=log,
    )
    if not running.set(replicator):
        return 1
    if not replicator.ready.wait(LITESTREAM_READY_TIMEOUT_S) and replicator.poll() is not None:
        health_path(settings).unlink(missing_ok=True)
        error(f"litestream exited with {replicator.poll()} at start; the task must be replaced")
        return 1
    mirror.sync()
    if first_sync is not None:
        outcome = wait_first_sync(
            control,
            data_dir,
            first_sync,
            stop=stop,
            litestream_exited=lambda: replicator.poll() is not None,
        )
        if outcome is Outcome.EXITED and not lost.is_set():
            error(
                f"litestream exited with {replicator.poll()} during its first sync; the task "
                "must be replaced"
            )
            return 1
        if outcome is Outcome.TIMED_OUT:
            replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
            return 1
    if not stop.is_set():
        write_health(settings, replicator.pid, generation)
        info(f"healthy: replicating {data_dir} to generation {generation}")
        prune_in_background(
            store,
            generation,
            settings.history_days,
            holding=lambda: not lost.is_set() and not stop.is_set(),
        )
    ended = replicate_until_stopped(
        settings, stop, lost, mirror, replicator, store, generation, first_data_pending
    )
    if ended is not None:
        return ended
    return final_sync(settings, mirror, replicator, restored_stamps=restored_stamps, since=since)


def replicate_until_stopped(
    settings: Settings,
    stop: threading.Event,
    lost: threading.Event,
    mirror: FileMirror,
    replicator: litestream.Replicator,
    store: BackupStore,
    generation: str,
    first_data_pending: bool,
) -> int | None:
    """Mirror key files until a stop signal; None when the final sync is due (see `stop`)."""
    next_first_data = time.monotonic()
    while not stop.wait(MIRROR_INTERVAL_S):
        mirror.sync()
        code = replicator.poll()
        if code is not None:
            error(f"litestream exited unexpectedly with {code}; the task must be replaced")
            health_path(settings).unlink(missing_ok=True)
            mirror.sync()
            return 1
        if first_data_pending and time.monotonic() >= next_first_data:
            first_data_pending = not _record_first_data(store, generation, mirror)
            next_first_data = time.monotonic() + FIRST_DATA_POLL_S
    if lost.is_set():
        return 1  # Litestream was killed: no final sync into a prefix that is not ours
    return None


def _record_first_data(store: BackupStore, generation: str, mirror: FileMirror) -> bool:
    """Once a first-boot generation holds a database, record it (it may never be restored
    empty again). True when recorded."""
    try:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        if not listing.databases:
            return False
        record_first_data(
            store, generation, databases=len(listing.databases), key_files=len(mirror.seen)
        )
    except StoreError as exc:
        error(f"cannot record the first data of generation {generation}, retrying: {exc}")
        return False
    info(f"generation {generation} holds data from now on: it will never be restored empty")
    return True
