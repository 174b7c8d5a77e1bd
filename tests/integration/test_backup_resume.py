"""Litestream resumes a restored database's replica (backup/resume.py) instead of writing the
whole database again, against the real Litestream binary and file replicas it wrote.

Each test: a database replicated by Litestream, restored by Litestream into a new directory
(as the sidecar does after a restart), resumed, then replicated by a new Litestream process
in the sidecar's directory mode with its control socket, written to, and restored again. The
restore must hold every row, and what the second Litestream uploaded must be the new
transactions only (no level-0 file holding the whole database).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from helpers import wait_until
from pds_aws.backup import litestream
from pds_aws.backup.first_sync import Outcome, synced_databases, wait_first_sync
from pds_aws.backup.resume import meta_ltx_path, resume_replica

pytestmark = pytest.mark.integration

LITESTREAM = str(Path(sys.executable).parent / "litestream")
DB = "actors/ab/did:plc:resume/store.sqlite"
ROW_BYTES = 3000  # random: incompressible, about one row per page


def writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # as the PDS beside Litestream
    return conn


def insert(conn: sqlite3.Connection, rows: int) -> None:
    for _ in range(rows):
        conn.execute("INSERT INTO t (body) VALUES (randomblob(?))", (ROW_BYTES,))


def row_ids(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")]
    finally:
        conn.close()


def level0(replica: Path) -> dict[int, Path]:
    """The replica's level-0 files by TXID."""
    return {int(p.name[:16], 16): p for p in (replica / DB / "ltx" / "0").glob("*.ltx")}


class Running:
    """`litestream replicate` on a data directory, the sidecar's config and control socket."""

    def __init__(self, tmp_path: Path, data: Path, replica: Path, name: str) -> None:
        self.data = data
        self.control = litestream.control_socket(tmp_path / f"{name}-state")
        config = tmp_path / f"{name}-state" / "litestream.json"
        litestream.write_config(config, data, f"file://{replica}", 1, control=self.control)
        self.lines: list[str] = []
        self.replicator = litestream.Replicator(
            LITESTREAM, config, env=os.environ, log=lambda _level, line: self.lines.append(line)
        )

    def wait_synced(self, rels: set[str]) -> None:
        outcome = wait_first_sync(
            self.control,
            self.data,
            rels,
            stop=threading.Event(),
            litestream_exited=lambda: self.replicator.poll() is not None,
            timeout=60,
        )
        assert outcome is Outcome.DONE, self.lines[-20:]

    def stop(self) -> None:
        assert self.replicator.stop(30) == 0, self.lines[-20:]
        errors = [line for line in self.lines if "level=ERROR" in line or "verify ltx" in line]
        assert not errors, errors


def first_backup(tmp_path: Path, rows: int) -> tuple[Path, Path, list[int]]:
    data, replica = tmp_path / "first", tmp_path / "replica"
    (data / DB).parent.mkdir(parents=True)
    conn = writer(data / DB)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    running = Running(tmp_path, data, replica, "first")
    running.wait_synced({DB})
    insert(conn, rows)
    conn.close()
    running.stop()  # Litestream's last sync on SIGTERM
    return data, replica, row_ids(data / DB)


def restore(tmp_path: Path, replica: Path, name: str) -> Path:
    target = tmp_path / name / DB
    litestream.restore_database(
        LITESTREAM, f"file://{replica / DB}", target, timestamp=None, env=os.environ
    )
    return target


def test_a_resumed_replica_uploads_only_the_new_transactions(tmp_path: Path) -> None:
    _, replica, before = first_backup(tmp_path, rows=40)
    position = max(level0(replica))
    target = restore(tmp_path, replica, "second")
    assert row_ids(target) == before
    assert resume_replica(target, level0(replica)[position], position) is None
    assert meta_ltx_path(target, 0, position).is_file()

    running = Running(tmp_path, tmp_path / "second", replica, "second")
    running.wait_synced({DB})
    # The first sync of a resumed database uploads nothing: the replica is where it was.
    assert max(level0(replica)) == position
    conn = writer(target)
    insert(conn, 3)
    after = [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")]
    conn.close()
    wait_until(lambda: max(level0(replica)) > position, 30, "the new rows uploaded")
    running.stop()

    new = {txid: path for txid, path in level0(replica).items() if txid > position}
    assert min(new) == position + 1
    database_size = target.stat().st_size
    # 40 incompressible rows of 3,000 bytes: a whole-database file would be over 100 KB.
    assert all(path.stat().st_size < database_size / 4 for path in new.values()), {
        txid: path.stat().st_size for txid, path in new.items()
    }
    assert row_ids(restore(tmp_path, replica, "third")) == after


def test_a_resumed_replica_goes_on_through_litestreams_checkpoint(tmp_path: Path) -> None:
    """Over 1,000 pages written after the resume: Litestream checkpoints the WAL (its
    `min-checkpoint-page-count`), SQLite restarts it under new salts, and Litestream follows;
    the next restore still holds every row."""
    _, replica, _ = first_backup(tmp_path, rows=5)
    position = max(level0(replica))
    target = restore(tmp_path, replica, "second")
    assert resume_replica(target, level0(replica)[position], position) is None
    running = Running(tmp_path, tmp_path / "second", replica, "second")
    running.wait_synced({DB})
    wal = target.with_name(target.name + "-wal")
    resumed_salts = wal.read_bytes()[16:24]
    size = target.stat().st_size
    conn = writer(target)
    insert(conn, 1500)

    def restarted() -> bool:
        # SQLite restarts the WAL at a write once a checkpoint has copied every frame back.
        insert(conn, 5)
        return wal.read_bytes()[16:24] != resumed_salts

    wait_until(restarted, 60, "the WAL restarted after Litestream's checkpoint")
    assert target.stat().st_size > size * 10  # the checkpoint copied the pages into the file
    expected = [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")]
    conn.close()
    running.stop()
    assert row_ids(restore(tmp_path, replica, "third")) == expected


def test_not_resumed_when_the_position_file_is_not_the_replicas_position(tmp_path: Path) -> None:
    """The position file must be the replica's newest level-0 file at the restored TXID;
    anything else leaves Litestream's first sync to write the database whole."""
    _, replica, _ = first_backup(tmp_path, rows=5)
    files = level0(replica)
    position = max(files)
    target = restore(tmp_path, replica, "second")
    older = files[min(files)]
    assert "not the replica's position" in (resume_replica(target, older, position) or "")
    assert not target.with_name(target.name + "-wal").exists()
    assert not meta_ltx_path(target, 0, position).parent.exists()
    # Without a resume, the first sync writes the whole database again (what resume avoids).
    running = Running(tmp_path, tmp_path / "second", replica, "second")
    running.wait_synced({DB})
    assert synced_databases(running.control, running.data) == {DB}
    running.stop()
    assert max(level0(replica)) == position + 1
