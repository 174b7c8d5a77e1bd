"""`restore-at`: a point-in-time restore into a new generation (guides/BACKUP.md, "restore-at")."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from pds_aws.backup import litestream
from pds_aws.backup.generations import (
    covering_generation,
    create_generation,
    generation_chain,
    mark_seeded,
    read_current_tagged,
    set_current,
)
from pds_aws.backup.layout import (
    CURRENT_OBJECT,
    generation_prefix,
    is_generation_id,
)
from pds_aws.backup.lease import Lease
from pds_aws.backup.logs import error, info, iso_utc
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import (
    InvalidTimestamp,
    parse_timestamp,
    read_generation,
    restored_point,
    settings_replica_url,
)
from pds_aws.backup.replicate import LITESTREAM_CONFIG_FILE
from pds_aws.backup.restore import RestoreFailed, restore_generation
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError, open_store


def restore_at_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        at = None if args.timestamp == "latest" else parse_timestamp(args.timestamp)
    except InvalidTimestamp as exc:
        error(str(exc))
        return 2
    if args.generation is not None and not is_generation_id(args.generation):
        error(
            f"--generation {args.generation!r} is not a generation id (like "
            "20261129T201500Z-1a2b); list them with `pds-aws-backup status`"
        )
        return 2
    try:
        result = restore_at(settings, at, args.generation)
    except RestoreFailed as exc:
        for problem in exc.problems:
            error(f"restore-at: {problem}")
        error("restore-at failed; CURRENT is unchanged and no history was touched")
        return 1
    except (StoreError, litestream.LitestreamError, ValueError) as exc:
        error(f"restore-at failed: {exc}; CURRENT is unchanged and no history was touched")
        return 1
    print(json.dumps(result), flush=True)
    return 0


def restore_at(settings: Settings, at: datetime | None, source: str | None) -> dict[str, object]:
    """Make a new current generation from `source` (default: current) as of `at` (None: latest).

    `at` is looked up along the source's history: the generation it was made from (ORIGIN
    `source`), and so on back, until one already held the data directory at `at`. Latest of
    another generation just points CURRENT back at it. The running sidecar keeps writing into
    its own generation: replace the task afterwards (the new task restores the new CURRENT).
    """
    store = open_store(settings)
    store.check_access()
    # One writer: wait for the task's sidecar to release the lease after its final sync
    # (the operator command stops the PDS first), and hold it while CURRENT moves.
    lease = Lease(store, lease_s=settings.lease_s)
    if not lease.acquire(timeout=settings.lease_s + 60):
        raise ValueError(
            "the backup lease is still held by a running sidecar: stop the PDS first "
            "(`pds-aws backup restore --at` does), then try again"
        )
    try:
        return _restore_at_holding_lease(settings, store, at, source)
    finally:
        lease.release()


def _restore_at_holding_lease(
    settings: Settings, store: BackupStore, at: datetime | None, source: str | None
) -> dict[str, object]:
    tagged = read_current_tagged(store)
    if tagged is None:
        raise ValueError(f"no backup at {settings.backup_url} ({CURRENT_OBJECT} is missing)")
    current, current_etag = tagged
    source = source or current
    if not store.list_objects(generation_prefix(source) + "/")[:1]:
        raise ValueError(f"generation {source} does not exist at {settings.backup_url}")
    if at is None:
        if source != current:
            set_current(store, source, replacing=current_etag)
            info(f"CURRENT now points at generation {source} (was {current})")
        else:
            info(f"generation {source} is already current; nothing to do")
        return {"ok": True, "generation": source, "previous": current, "source": source, "at": None}

    chain = generation_chain(store, source)
    covering = covering_generation(chain, at)
    if covering is None:
        oldest = chain[-1].get("seeded") or chain[-1].get("created")
        raise ValueError(f"{iso_utc(at)} is before the oldest backup in this history ({oldest})")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="pds-aws-restore-at-"))
    try:
        data = scratch / "data"
        data.mkdir()
        report = restore_generation(settings, store, covering, data, at=at)
        if report.plan is None:
            raise ValueError(f"generation {covering} is empty")
        reached = restored_point(
            read_generation(store.list_objects(generation_prefix(covering) + "/"), covering),
            report.plan.databases,
            at,
        )
        if reached.behind:
            info(
                f"asked for {iso_utc(at)}; restored as of {iso_utc(reached.point)}: "
                f"{len(reached.behind)} database(s) have no backup file at that moment (the "
                "next one is later: at most one sync apart in the last minutes, one "
                f"compaction apart before), e.g. {reached.behind[0]}"
            )
        else:
            info(f"restored as of {iso_utc(at)}, the moment asked")
        new = create_generation(
            store,
            {"reason": "restore-at", "source": covering, "at": iso_utc(at), "previous": current},
        )
        info(f"seeding generation {new} from {covering} as of {iso_utc(at)}")
        config = scratch / LITESTREAM_CONFIG_FILE
        url = settings_replica_url(settings, new)
        litestream.write_config(config, data, url, settings.history_days)
        litestream.replicate_once(
            settings.litestream_bin, config, env=litestream.litestream_env(os.environ)
        )
        mirror = FileMirror(store, data, new)
        if mirror.sync():
            raise StoreError(f"could not upload every key file into generation {new}")
        seeded = read_generation(store.list_objects(generation_prefix(new) + "/"), new)
        missing = sorted(set(report.plan.databases) - set(seeded.databases))
        if missing:
            raise StoreError(f"generation {new} lacks {len(missing)} databases: {missing[:3]}")
        mark_seeded(store, new, databases=len(seeded.databases), key_files=report.key_files)
        set_current(store, new, replacing=current_etag)
        info(f"CURRENT now points at generation {new} (was {current}); replace the task")
        return {
            "ok": True,
            "generation": new,
            "previous": current,
            "source": covering,
            "at": iso_utc(at),
            "restored_to": iso_utc(reached.point),
            "databases_behind": len(reached.behind),
            "accounts": len(report.plan.accounts),
            "databases": report.databases,
            "seconds": round(time.monotonic() - started, 3),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
