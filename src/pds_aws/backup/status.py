"""`status`: JSON, the generations and the newest replicated change per database."""

from __future__ import annotations

import argparse
import json

from pds_aws.backup.generations import (
    generation_chain,
    list_generations,
    read_current,
    undo_generation,
)
from pds_aws.backup.layout import generation_prefix
from pds_aws.backup.logs import error, iso_utc
from pds_aws.backup.plan import read_generation
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import StoreError, open_store


def status(settings: Settings, args: argparse.Namespace) -> int:
    try:
        store = open_store(settings)
        store.check_access()
        current = read_current(store)
        generations = list_generations(store)
        databases: dict[str, str | None] = {}
        files = 0
        undo: str | None = None
        if current is not None:
            undo = undo_generation(generation_chain(store, current))
            contents = read_generation(
                store.list_objects(generation_prefix(current) + "/"), current
            )
            databases = {
                rel: iso_utc(db.newest_change) if db.newest_change else None
                for rel, db in sorted(contents.databases.items())
            }
            files = len(contents.files)
    except StoreError as exc:
        error(f"status: {exc}")
        return 1
    changes = [v for v in databases.values() if v]
    print(
        json.dumps(
            {
                "backup_url": str(settings.backup_url),
                "current_generation": current,
                "generations": generations,
                # where `restore-at latest` goes: the history the last restore branched off
                "undo_generation": undo,
                "databases": databases,
                "database_count": len(databases),
                "files": files,
                "newest_change": max(changes) if changes else None,
                "oldest_change": min(changes) if changes else None,
            }
        ),
        flush=True,
    )
    return 0
