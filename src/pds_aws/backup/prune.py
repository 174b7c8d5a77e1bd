"""Pruning: the generations no point of the history window needs any more
(guides/BACKUP.md, "History and pruning").

Inside a generation Litestream keeps the window itself: snapshots for `history_days` plus one
snapshot interval, and the compacted files before the oldest snapshot it keeps are deleted
(plan.snapshot_retention). Generations are made only by a first boot and by `restore-at`; a
restart continues the current one. A generation is kept when it is:

- current, or where `restore --at latest` goes (the history the last restore branched off);
- in the chain of one of those (ORIGIN `source`, back) down to the newest member seeded at or
  before the start of the window: `restore-at T` for any T in the window starts from it;
- or its newest object is younger than the window (a generation left by an undo, say).

Everything else is deleted, its ORIGIN last (an interrupted prune leaves a generation that the
next one finds again). The sidecar prunes once per start, in the background, holding the lease.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pds_aws.backup.generations import read_origin, undo_generation
from pds_aws.backup.layout import GENERATIONS_DIR, generation_prefix, is_generation_id, origin_key
from pds_aws.backup.logs import info, iso_utc, warn
from pds_aws.backup.store import BackupStore, StoreError


def _chain(origins: Mapping[str, Mapping[str, Any]], start: str) -> list[str]:
    chain: list[str] = []
    generation = start
    while generation in origins and generation not in chain:
        chain.append(generation)
        source = origins[generation].get("source")
        if not isinstance(source, str):
            break
        generation = source
    return chain


def _covering_window(
    origins: Mapping[str, Mapping[str, Any]], start: str, window_start: str
) -> list[str]:
    """`start` and the older members of its chain down to the one the window starts in."""
    kept: list[str] = []
    for generation in _chain(origins, start):
        kept.append(generation)
        seeded = origins[generation].get("seeded") or origins[generation].get("created")
        if isinstance(seeded, str) and seeded <= window_start:
            break
    return kept


def prunable(
    origins: Mapping[str, Mapping[str, Any]],
    newest_object: Mapping[str, datetime],
    current: str,
    now: datetime,
    history_days: int,
) -> list[str]:
    """The generations to delete (pure). `origins`: every generation's ORIGIN;
    `newest_object`: when each generation's newest object was stored."""
    start = now - timedelta(days=history_days)
    window_start = iso_utc(start)
    kept = set(_covering_window(origins, current, window_start))
    undo = undo_generation([dict(origins[g]) for g in _chain(origins, current)])
    if undo is not None:
        kept |= {undo, *_covering_window(origins, undo, window_start)}
    return sorted(
        generation
        for generation in origins
        if generation not in kept
        and generation in newest_object
        and newest_object[generation] < start
    )


def prune_generations(
    store: BackupStore,
    current: str,
    history_days: int,
    holding: Callable[[], bool] = lambda: True,
) -> list[str]:
    """Delete the generations `prunable` names; returns them. `holding`: whether we still
    hold the lease (checked before each generation)."""
    names = [n for n in store.child_names(GENERATIONS_DIR) if is_generation_id(n)]
    if current not in names:
        return []  # never prune without the current generation in sight
    origins: dict[str, dict[str, Any]] = {}
    newest: dict[str, datetime] = {}
    objects_of: dict[str, list[str]] = {}
    for generation in names:
        origins[generation] = read_origin(store, generation)
        objects = store.list_objects(generation_prefix(generation) + "/")
        objects_of[generation] = [o.key for o in objects]
        if objects:
            newest[generation] = max(o.last_modified for o in objects)
    doomed = prunable(origins, newest, current, datetime.now(UTC), history_days)
    for generation in doomed:
        if not holding():
            break
        origin = origin_key(generation)
        keys = [k for k in objects_of[generation] if k != origin]
        for key in [*keys, origin]:
            store.delete(key)
        info(
            f"pruned generation {generation} ({len(keys) + 1} objects): no point of the last "
            f"{history_days} days needs it"
        )
    return doomed


def prune_in_background(
    store: BackupStore, current: str, history_days: int, holding: Callable[[], bool]
) -> threading.Thread:
    def run() -> None:
        try:
            prune_generations(store, current, history_days, holding)
        except StoreError as exc:
            warn(f"pruning old generations failed, retried at the next start: {exc}")

    thread = threading.Thread(target=run, name="prune", daemon=True)
    thread.start()
    return thread
