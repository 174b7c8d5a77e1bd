"""Generations and the `CURRENT` pointer on the backup store (guides/BACKUP.md, "Layout")."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

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
    raw = store.get_bytes(CURRENT_OBJECT)
    if raw is None:
        return None
    generation = raw.decode("utf-8", "replace").strip()
    if not is_generation_id(generation):
        raise StoreError(
            f"{CURRENT_OBJECT} holds {generation[:40]!r}, not a generation id; point it at one "
            f"of `{GENERATIONS_DIR}/` with `pds-aws-backup restore-at latest --generation ID`"
        )
    return generation


def create_generation(store: BackupStore, origin: dict[str, str | None]) -> str:
    generation = new_generation_id(datetime.now(UTC), os.urandom(2))
    body = {"generation": generation, "created": iso_utc(datetime.now(UTC)), **origin}
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return generation


def read_origin(store: BackupStore, generation: str) -> dict[str, str | None]:
    raw = store.get_bytes(origin_key(generation))
    if raw is None:
        return {"generation": generation}
    try:
        body = json.loads(raw)
    except ValueError:
        return {"generation": generation}
    return body if isinstance(body, dict) else {"generation": generation}


def mark_seeded(store: BackupStore, generation: str) -> str:
    """Record when the generation holds every database and key: from then on it is the
    history of the data directory (used by restore-at to pick the generation covering T)."""
    body = read_origin(store, generation)
    seeded = iso_utc(datetime.now(UTC))
    body["seeded"] = seeded
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return seeded


def set_current(store: BackupStore, generation: str) -> None:
    store.put_bytes(CURRENT_OBJECT, f"{generation}\n".encode())


def generation_chain(store: BackupStore, start: str) -> list[dict[str, str | None]]:
    """`start` and the generations it was made from (ORIGIN `source`), newest first."""
    chain: list[dict[str, str | None]] = []
    seen: set[str] = set()
    generation: str | None = start
    while generation and generation not in seen and len(chain) < 10_000:
        seen.add(generation)
        origin = read_origin(store, generation)
        chain.append(origin)
        source = origin.get("source")
        generation = source if isinstance(source, str) and is_generation_id(source) else None
    return chain


def covering_generation(chain: list[dict[str, str | None]], at: datetime) -> str | None:
    """The newest generation of the chain that already held the whole data directory at `at`."""
    stamp = iso_utc(at)
    for origin in chain:
        seeded = origin.get("seeded") or origin.get("created")
        if seeded is not None and seeded <= stamp:
            return origin.get("generation")
    return None


def list_generations(store: BackupStore) -> list[str]:
    return [g for g in store.child_names(GENERATIONS_DIR) if is_generation_id(g)]
