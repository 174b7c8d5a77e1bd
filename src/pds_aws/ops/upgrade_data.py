"""What an upgrade reads from the backup: its restore point, the databases' schema, the writes a
return to the restore point would drop.

- The restore point is the old task's final sync. Its backup sidecar releases the single-writer
  lease right after that sync, and the new task's sidecar records the released lease when it
  takes it over (`previous` in the LEASE object, pds_aws.backup.lease): the release time is the
  point.
- The schema of every database is its Kysely migration table (`kysely_migration`, one row per
  migration @atproto/pds has applied). Two restores of the backup, at the point and latest,
  show whether the new version migrated anything.
- Every write the PDS acknowledges (a record created, updated or deleted, an account created,
  a handle changed) is an event in `sequencer.sqlite`'s `repo_seq`, numbered by `seq` and
  stamped `sequencedAt`: those after the point's last `seq` are what the return drops.

Reading is pure (`restore_point_from`, `migrations_of`, `schema_changes`, `dropped_writes`);
`restore_scratch` is the one step that talks to the backup store.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pds_aws.errors import OperationError

MIGRATION_TABLE = "kysely_migration"
SEQUENCER_DB = "sequencer.sqlite"


@dataclass(frozen=True)
class RestorePoint:
    """The moment the old task's final sync ended (its lease release), by the store's writer."""

    at: datetime
    holder: str
    released: bool  # False: the old task's lease expired (it crashed; no final sync)


@dataclass(frozen=True)
class DroppedWrites:
    count: int
    first: str | None  # sequencedAt of the first and last dropped event
    last: str | None
    by_type: Mapping[str, int] = field(default_factory=dict)
    accounts: int = 0

    def describe(self) -> str:
        if not self.count:
            return "no write was made after the restore point: nothing is dropped"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.by_type.items()))
        return (
            f"{self.count} writes ({kinds}) of {self.accounts} account(s), made on the new "
            f"version from {self.first} to {self.last}"
        )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def lease_holder(lease: bytes | None) -> str | None:
    """Who holds (or last held) the lease, from the LEASE object's body."""
    body = _json_object(lease)
    holder = body.get("holder")
    return holder if isinstance(holder, str) else None


def restore_point_from(lease: bytes | None, old_holder: str | None) -> RestorePoint | None:
    """The old holder's release, from the LEASE object's body: the old holder's own released
    lease (nobody took it yet), or the record the next holder made of it. None while neither
    is there (the old task is still syncing, or the new one has not taken over yet)."""
    body = _json_object(lease)
    if old_holder is None:
        return None
    if body.get("holder") == old_holder:
        if body.get("released") is True and isinstance(body.get("renewed"), str):
            return RestorePoint(parse_time(str(body["renewed"])), old_holder, True)
        return None
    previous = body.get("previous")
    if isinstance(previous, dict) and previous.get("holder") == old_holder:
        at = previous.get("at")
        if isinstance(at, str):
            return RestorePoint(parse_time(at), old_holder, previous.get("released") is True)
    return None


def _json_object(data: bytes | None) -> dict[str, object]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the databases ---------------------------------------------------------------------------


def _databases(data_dir: Path) -> Iterator[Path]:
    yield from sorted(data_dir.rglob("*.sqlite"))


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def migrations_of(data_dir: Path) -> dict[str, tuple[str, ...]]:
    """Each database's applied migrations (relative path -> names in order)."""
    found: dict[str, tuple[str, ...]] = {}
    for path in _databases(data_dir):
        with closing(_read_only(path)) as db:
            has_table = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (MIGRATION_TABLE,),
            ).fetchone()
            names = (
                db.execute(f"SELECT name FROM {MIGRATION_TABLE} ORDER BY name").fetchall()
                if has_table
                else []
            )
        found[str(path.relative_to(data_dir))] = tuple(str(row[0]) for row in names)
    return found


def schema_changes(
    before: Mapping[str, tuple[str, ...]], after: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """Migrations applied since `before`, per database (databases created since are new
    accounts' stores, not a schema change, unless their migrations differ from the others')."""
    changes: list[str] = []
    known = {names for names in before.values()}
    for path, names in sorted(after.items()):
        old = before.get(path)
        if old is None:
            if names not in known and names:
                changes.append(f"{path}: new database with migrations {', '.join(names)}")
            continue
        added = [n for n in names if n not in old]
        removed = [n for n in old if n not in names]
        if added:
            changes.append(f"{path}: migration {', '.join(added)} applied")
        if removed:
            changes.append(f"{path}: migration {', '.join(removed)} gone")
    return changes


def last_seq(data_dir: Path) -> int:
    """The newest sequencer event of a data directory (0 when there is none)."""
    path = data_dir / SEQUENCER_DB
    if not path.is_file():
        return 0
    with closing(_read_only(path)) as db:
        row = db.execute("SELECT MAX(seq) FROM repo_seq").fetchone()
    return int(row[0] or 0)


def dropped_writes(at_point: Path, latest: Path) -> DroppedWrites:
    """The sequencer events of `latest` after the newest one of `at_point`."""
    since = last_seq(at_point)
    path = latest / SEQUENCER_DB
    if not path.is_file():
        return DroppedWrites(0, None, None)
    with closing(_read_only(path)) as db:
        rows = db.execute(
            'SELECT "eventType", "sequencedAt", did FROM repo_seq WHERE seq > ? ORDER BY seq',
            (since,),
        ).fetchall()
    if not rows:
        return DroppedWrites(0, None, None)
    return DroppedWrites(
        count=len(rows),
        first=str(rows[0][1]),
        last=str(rows[-1][1]),
        by_type=dict(Counter(str(r[0]) for r in rows)),
        accounts=len({r[2] for r in rows}),
    )


# -- the backup store ------------------------------------------------------------------------


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    # The store's S3 client reads its credentials and endpoint from the environment.
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_lease(backup_env: Mapping[str, str]) -> bytes | None:
    from pds_aws.backup.lease import LEASE_OBJECT
    from pds_aws.backup.settings import settings_from_env
    from pds_aws.backup.store import open_store

    with _environment(backup_env):
        store = open_store(settings_from_env({**os.environ, **backup_env}))
        return store.get_bytes(LEASE_OBJECT)


def restore_scratch(backup_env: Mapping[str, str], out_dir: Path, at: datetime | None) -> None:
    """Restore the current backup generation (as of `at`, or latest) into `out_dir`."""
    from pds_aws.backup.generations import read_current
    from pds_aws.backup.restore import RestoreFailed, restore_generation
    from pds_aws.backup.settings import settings_from_env
    from pds_aws.backup.store import StoreError, open_store

    with _environment(backup_env):
        settings = settings_from_env({**os.environ, **backup_env})
        try:
            store = open_store(settings)
            generation = read_current(store)
            if generation is None:
                raise OperationError(f"no backup at {settings.backup_url}")
            out_dir.mkdir(parents=True, exist_ok=True)
            restore_generation(settings, store, generation, out_dir, at=at)
        except RestoreFailed as exc:
            raise OperationError(
                f"restoring the backup into {out_dir} failed: {'; '.join(exc.problems)}"
            ) from None
        except StoreError as exc:
            raise OperationError(f"reading the backup failed: {exc}") from None
