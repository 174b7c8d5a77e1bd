"""Restoring many databases in one Litestream process (backup/litestream.restore_latest_many)
against the real Litestream binary and file replicas written by the real Litestream.

The sidecar's whole restore path (S3 in moto, the fallback to one process per database on a
damaged object) is exercised by test_backup_sidecar.py; this file checks the primitive: the
latest rows of every database, and a database without a backup is a failure, never a
silently missing or empty database.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from pds_aws.backup import litestream

pytestmark = pytest.mark.integration

LITESTREAM = str(Path(sys.executable).parent / "litestream")


def make_database(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(rows)])
        conn.commit()
    finally:
        conn.close()


def rows_of(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


def replicate(tmp_path: Path, rels_rows: dict[str, int]) -> Path:
    """Databases under tmp/data, replicated once by Litestream into tmp/replica/<rel>."""
    data = tmp_path / "data"
    for rel, rows in rels_rows.items():
        make_database(data / rel, rows)
    replica = tmp_path / "replica"
    config = tmp_path / "replicate.yml"
    litestream.write_config(config, data, f"file://{replica}", history_days=1)
    litestream.replicate_once(LITESTREAM, config, env=os.environ)
    return replica


def test_many_databases_come_back_with_their_latest_rows_from_one_process(
    tmp_path: Path,
) -> None:
    rels_rows = {"account.sqlite": 3, "actors/ab/did:plc:a/store.sqlite": 5, "x/y.sqlite": 1}
    replica = replicate(tmp_path, rels_rows)
    out = tmp_path / "out"
    litestream.restore_latest_many(
        LITESTREAM,
        [(f"file://{replica / rel}", out / rel) for rel in rels_rows],
        tmp_path / "restore.yml",
        env=os.environ,
    )
    for rel, rows in rels_rows.items():
        assert rows_of(out / rel) == list(range(rows)), rel


def test_a_database_without_a_backup_fails_and_is_named(tmp_path: Path) -> None:
    replica = replicate(tmp_path, {"a.sqlite": 2})
    empty = tmp_path / "no-backup-here"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(litestream.LitestreamError) as failed:
        litestream.restore_latest_many(
            LITESTREAM,
            [(f"file://{replica / 'a.sqlite'}", out / "a.sqlite"), (f"file://{empty}", out / "b")],
            tmp_path / "restore.yml",
            env=os.environ,
        )
    assert "no restorable state" in str(failed.value)
    assert str(out / "b") in str(failed.value)
    assert not (out / "b").exists()
