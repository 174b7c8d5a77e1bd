"""Pruning generations no point of the history window needs; a file:// store, no processes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pds_aws.backup.layout import origin_key
from pds_aws.backup.logs import iso_utc
from pds_aws.backup.prune import prunable, prune_generations
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 30


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def origin(source: str | None, seeded_days_ago: float, **extra: Any) -> dict[str, Any]:
    return {"source": source, "seeded": iso_utc(days_ago(seeded_days_ago)), **extra}


def test_the_chain_is_kept_down_to_the_generation_the_window_starts_in() -> None:
    # g1 (first boot, 90 days ago) <- g2 (restore-at, 45 days ago) <- g3 (restore-at, 10 days)
    origins = {
        "g1": origin(None, 90, first_boot=True),
        "g2": origin("g1", 45, reason="restore-at", previous="g1"),
        "g3": origin("g2", 10, reason="restore-at", previous="g2"),
    }
    newest = {"g1": days_ago(45), "g2": days_ago(10), "g3": days_ago(0)}
    # The window starts 30 days ago, inside g2's time: g2 and g3 are needed, g1 is not; g2
    # is also where `--at latest` goes.
    assert prunable(origins, newest, "g3", NOW, DAYS) == ["g1"]
    # With a 60-day window g1 covers its start.
    assert prunable(origins, newest, "g3", NOW, 60) == []


def test_the_undo_target_and_its_window_stay() -> None:
    # g2 was current; a restore made g3 from g1's history (source g1, previous g2).
    origins = {
        "g1": origin(None, 200, first_boot=True),
        "g2": origin("g1", 100, reason="restore-at", previous="g1"),
        "g3": origin("g1", 50, reason="restore-at", previous="g2"),
    }
    newest = {"g1": days_ago(100), "g2": days_ago(50), "g3": days_ago(0)}
    # g3 was seeded before the window starts: it alone covers the window. `--at latest`
    # goes to g2, which alone covers the window of its own history. g1 goes.
    assert prunable(origins, newest, "g3", NOW, DAYS) == ["g1"]


def test_a_generation_written_within_the_window_is_never_pruned() -> None:
    origins = {
        "g1": origin(None, 90, first_boot=True),
        "g2": origin("g1", 5, reason="restore-at", previous="g1"),
        "dead": origin("g1", 80, reason="restore-at", previous="g1"),
    }
    # `dead` is on no chain that matters, but was written 20 days ago: kept for now.
    newest = {"g1": days_ago(5), "g2": days_ago(0), "dead": days_ago(20)}
    assert prunable(origins, newest, "g2", NOW, DAYS) == []
    newest["dead"] = days_ago(40)
    assert prunable(origins, newest, "g2", NOW, DAYS) == ["dead"]


def test_pruning_deletes_every_object_of_the_generation_and_nothing_else(tmp_path: Path) -> None:
    store = FileStore(BackupUrl("file", "", str(tmp_path / "backup")))
    old, current = "20260101T000000Z-0a0a", "20261101T000000Z-0b0b"
    store.put_bytes(origin_key(old), json.dumps(origin(None, 330, first_boot=True)).encode())
    store.put_bytes(f"generations/{old}/litestream/account.sqlite/0009/a.ltx", b"x")
    store.put_bytes(f"generations/{old}/files/actors/ab/did:plc:a/key", b"k")
    store.put_bytes(origin_key(current), json.dumps(origin(old, 40, previous=old)).encode())
    store.put_bytes(f"generations/{current}/litestream/account.sqlite/0009/b.ltx", b"y")
    # The file store dates objects by mtime: make the old generation's objects old.
    for path in (tmp_path / "backup" / "generations" / old).rglob("*"):
        if path.is_file():
            stamp = days_ago(300).timestamp()
            os.utime(path, (stamp, stamp))
    assert prune_generations(store, current, DAYS) == [old]
    assert store.list_objects(f"generations/{old}/") == []
    assert [o.key for o in store.list_objects(f"generations/{current}/")] != []
    assert prune_generations(store, "20991231T000000Z-0c0c", DAYS) == []  # current unseen
