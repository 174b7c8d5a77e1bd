"""Generations and the `CURRENT` pointer on the backup store (guides/BACKUP.md, "Layout")."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from pds_aws.backup.layout import (
    CURRENT_OBJECT,
    GENERATIONS_DIR,
    is_generation_id,
    new_generation_id,
    origin_key,
)
from pds_aws.backup.logs import iso_utc
from pds_aws.backup.store import BackupStore, StoreError


def read_current(store: BackupStore) -> str | None:
    tagged = read_current_tagged(store)
    return tagged[0] if tagged is not None else None


def read_current_tagged(store: BackupStore) -> tuple[str, str] | None:
    """The current generation and the ETag of `CURRENT` (for a conditional repoint)."""
    current = store.get_tagged(CURRENT_OBJECT)
    if current is None:
        return None
    generation = current.data.decode("utf-8", "replace").strip()
    if not is_generation_id(generation):
        raise StoreError(
            f"{CURRENT_OBJECT} holds {generation[:40]!r}, not a generation id; point it at one "
            f"of `{GENERATIONS_DIR}/` with `pds-aws-backup restore-at latest --generation ID`"
        )
    return generation, current.etag


def create_generation(store: BackupStore, origin: dict[str, object]) -> str:
    generation = new_generation_id(datetime.now(UTC), os.urandom(2))
    body = {"generation": generation, "created": iso_utc(datetime.now(UTC)), **origin}
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return generation


def read_origin(store: BackupStore, generation: str) -> dict[str, Any]:
    raw = store.get_bytes(origin_key(generation))
    if raw is None:
        return {"generation": generation}
    try:
        body = json.loads(raw)
    except ValueError:
        return {"generation": generation}
    return body if isinstance(body, dict) else {"generation": generation}


def mark_seeded(store: BackupStore, generation: str, *, databases: int, key_files: int) -> str:
    """Record when the generation holds every database and key, and how many: from then on
    it is the history of the data directory (restore-at picks the generation covering T by
    it), and a restore that finds it empty knows it lost data (`may_start_empty`)."""
    body = read_origin(store, generation)
    seeded = iso_utc(datetime.now(UTC))
    body.update(seeded=seeded, databases=databases, key_files=key_files)
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return seeded


def set_current(store: BackupStore, generation: str, *, replacing: str | None) -> None:
    """Point CURRENT at `generation`, conditionally: create it only if absent (`replacing`
    None), else replace it only if its ETag is still `replacing`. Raises PreconditionFailed
    when another writer moved it meanwhile."""
    body = f"{generation}\n".encode()
    if replacing is None:
        store.put_conditional(CURRENT_OBJECT, body, if_none_match=True)
    else:
        store.put_conditional(CURRENT_OBJECT, body, if_match=replacing)


def record_first_data(
    store: BackupStore, generation: str, *, databases: int, key_files: int
) -> None:
    """A first-boot generation holds data from now on: it may never be restored empty."""
    body = read_origin(store, generation)
    body.update(data_seen=iso_utc(datetime.now(UTC)), databases=databases, key_files=key_files)
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())


def may_start_empty(origin: dict[str, Any]) -> bool:
    """Whether a generation without any database may start an empty PDS: only a recorded
    first boot (ORIGIN `first_boot`, zero databases recorded, no data seen since)."""
    return (
        origin.get("first_boot") is True
        and origin.get("databases") == 0
        and origin.get("key_files") == 0
        and not origin.get("data_seen")
    )


def generation_chain(store: BackupStore, start: str) -> list[dict[str, Any]]:
    """`start` and the generations it was made from (ORIGIN `source`), newest first."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    generation: str | None = start
    while generation and generation not in seen and len(chain) < 10_000:
        seen.add(generation)
        origin = read_origin(store, generation)
        chain.append(origin)
        source = origin.get("source")
        generation = source if isinstance(source, str) and is_generation_id(source) else None
    return chain


def undo_generation(chain: list[dict[str, Any]]) -> str | None:
    """The history the most recent restore in this lineage branched off (its `previous`).

    `chain` is the current generation and the ones it was made from, newest first (their
    ORIGIN records): the restore is found by walking back, not by taking the last id. Where
    `--at latest` goes.
    """
    for origin in chain:
        if origin.get("reason") == "restore-at" and origin.get("previous"):
            return str(origin["previous"])
    return None


def covering_generation(chain: list[dict[str, Any]], at: datetime) -> str | None:
    """The newest generation of the chain that already held the whole data directory at `at`."""
    stamp = iso_utc(at)
    for origin in chain:
        seeded = origin.get("seeded") or origin.get("created")
        generation = origin.get("generation")
        if isinstance(seeded, str) and seeded <= stamp and isinstance(generation, str):
            return generation
    return None


def list_generations(store: BackupStore) -> list[str]:
    return [g for g in store.child_names(GENERATIONS_DIR) if is_generation_id(g)]
