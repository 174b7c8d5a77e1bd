"""The pieces of resuming a replica (backup/resume.py): the LTX file checksum patched without
reading the file, the one-frame WAL SQLite accepts and appends to, and the refusals that leave
Litestream's first sync to do the work. Litestream itself accepting the result is
tests/integration/test_backup_resume.py."""

from __future__ import annotations

import random
import sqlite3
import struct
from datetime import UTC, datetime
from pathlib import Path

from pds_aws.backup.fetch import LtxFile, position_file
from pds_aws.backup.resume import (
    crc64_iso,
    one_frame_wal,
    page_size_of,
    patched_checksum,
    resume_replica,
)

STORED = datetime(2026, 11, 30, tzinfo=UTC)


def test_crc64_is_gos_iso_crc() -> None:
    """The CRC-64/GO-ISO check value (the CRC catalogue's, for "123456789"): what Go's
    hash/crc64 with the ISO table computes, and what LTX file checksums are."""
    assert crc64_iso(b"123456789") == 0xB90956C775A41001
    assert crc64_iso(b"") == 0


def test_a_patched_checksum_is_the_checksum_of_the_patched_message() -> None:
    rng = random.Random(7)
    for length, offset, size in [(100, 48, 24), (5000, 48, 24), (70_000, 10, 3), (30, 0, 30)]:
        message = bytearray(rng.randbytes(length))
        old = bytes(message[offset : offset + size])
        new = rng.randbytes(size)
        before = crc64_iso(bytes(message))
        message[offset : offset + size] = new
        assert patched_checksum(before, length, offset, old, new) == crc64_iso(bytes(message))


def _database(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(b"x" * 500,)] * rows)
    conn.commit()
    conn.close()  # the last connection checkpoints and removes the WAL


def test_sqlite_takes_the_one_frame_wal_and_appends_under_its_salts(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    _database(db, rows=20)
    data = db.read_bytes()
    page_size = page_size_of(data)
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(one_frame_wal(data[:page_size], len(data) // page_size, 0x1234, 0x5678))
    reader = sqlite3.connect(db)  # runs the WAL's recovery
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (20,)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO t (body) VALUES (x'00')")
    after = wal.read_bytes()
    frame = 24 + page_size
    assert struct.unpack(">2I", after[16:24]) == (0x1234, 0x5678)  # not restarted
    assert len(after) > 32 + frame  # appended after the first frame
    assert (
        after[32 : 32 + frame]
        == one_frame_wal(data[:page_size], len(data) // page_size, 0x1234, 0x5678)[32:]
    )
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (21,)
    reader.close()
    conn.close()


def _ltx_entry(level: int, lo: int, hi: int) -> LtxFile:
    local = f"ltx/{level}/{lo:016x}-{hi:016x}.ltx"
    return (f"gen/litestream/account.sqlite/{local}", local, STORED)


def test_the_position_file_is_the_level0_file_at_the_highest_txid() -> None:
    files = [_ltx_entry(9, 1, 40), _ltx_entry(1, 41, 50), _ltx_entry(0, 51, 51)]
    assert position_file(files) == _ltx_entry(0, 51, 51)
    # Level 0 does not reach the replica's position: no position file.
    assert position_file([_ltx_entry(0, 7, 7), _ltx_entry(1, 1, 8)]) is None
    assert position_file([]) is None


def _ltx_file(path: Path, *, txid: int, page_size: int, commit: int) -> Path:
    header = struct.pack(
        ">4sIIIQQqQqqII", b"LTX1", 0, page_size, commit, txid, txid, 0, 1 << 63, 32, 0, 1, 2
    )
    path.write_bytes(
        header.ljust(100, b"\0") + b"\0" * 6 + b"\0" + struct.pack(">Q", 1) + b"\0" * 16
    )
    return path


def test_nothing_is_written_when_the_database_is_not_what_the_file_describes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.sqlite"
    _database(db, rows=20)
    data = db.read_bytes()
    page_size, pages = page_size_of(data), len(data) // page_size_of(data)
    wrong_pages = _ltx_file(tmp_path / "a.ltx", txid=9, page_size=page_size, commit=pages + 1)
    assert "is not what the newest level-0 file describes" in (
        resume_replica(db, wrong_pages, 9) or ""
    )
    behind = _ltx_file(tmp_path / "b.ltx", txid=8, page_size=page_size, commit=pages)
    assert "not the replica's position" in (resume_replica(db, behind, 9) or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ltx", "b.ltx", "store.sqlite"]
    db.with_name(db.name + "-wal").write_bytes(b"")
    fine = _ltx_file(tmp_path / "c.ltx", txid=9, page_size=page_size, commit=pages)
    assert "exists already" in (resume_replica(db, fine, 9) or "")
