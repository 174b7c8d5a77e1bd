"""Resume: Litestream continues a restored database's replica where it stands, instead of
writing the whole database to the backup again (guides/BACKUP.md, "Start: resuming the
replica").

Litestream 0.5 keeps, beside each database, a local copy of the newest level-0 LTX file it
wrote; the file's header says where in the WAL that transaction ended (offset, size and the
WAL's salts). At each sync `DB.verify` compares that with the WAL on disk: the same salts and
nothing overwritten means "go on from there", anything else means "write the whole database
as a new level-0 file". A restored database has no local state and a WAL no LTX file
describes, so without this module Litestream's first sync after a restore uploads every
database whole (a LIST, a GET and a PUT each), and a write to a database before that upload
is not in the backup: the sidecar had to wait for that pass before it reported healthy.

After a restore of the latest state (the database is exactly at the replica's newest TXID N),
the sidecar writes what Litestream would have found had it been running all along:

- a WAL holding one committed frame, page 1 of the restored database unchanged (it changes
  nothing), under fresh random salts;
- the replica's own newest level-0 file (TXID N), in Litestream's local level-0 directory,
  with only its WAL fields rewritten to "ended after that frame, under those salts" and its
  file checksum updated to match. Its pages are the replica's, so a compaction that reads the
  local copy instead of the stored one gets the same pages.

Litestream's start then finds the database at the replica's position (`checkDatabaseBehindReplica`
fetches nothing), its verify finds the WAL it expects, and its next sync uploads only what the
PDS writes, as level-0 file N+1. A SQLite writer appends to a WAL that holds valid frames
(it restarts the WAL, with new salts, only once a checkpoint has copied every frame back),
and Litestream handles that restart as it always does. When anything does not hold (a point-
in-time restore, the newest level-0 file not at the replica's position, a page count or page
size that differs), nothing is written and Litestream does its first pass for that database.

Formats: the LTX header and trailer are superfly/ltx's (`Header.MarshalBinary`: WALOffset at
byte 48, WALSize at 56, WALSalt1 and WALSalt2 at 64 and 68; the trailer's last 8 bytes are the
file checksum, CRC-64/ISO as Go computes it over everything before them, with the top bit set);
the WAL is SQLite's (https://www.sqlite.org/fileformat2.html#walformat).
"""

from __future__ import annotations

import os
import secrets
import shutil
import struct
from functools import cache
from pathlib import Path
from typing import BinaryIO

from pds_aws.backup.fetch import LTX_MAGIC

LTX_HEADER_SIZE = 100
_LTX_HEADER = struct.Struct(">4sIIIQQqQqqII")  # through WALSalt2
_WAL_FIELDS = struct.Struct(">qqII")
_WAL_FIELDS_OFFSET = 48
CHECKSUM_SIZE = 8
TRAILER_SIZE = 16  # post-apply checksum, file checksum
INDEX_SIZE_SIZE = 8
_PAGE_HEADER = struct.Struct(">IH")  # page number, flags
PAGE_FLAG_SIZE = 1  # a 4-byte compressed size follows the page header (LZ4 block format)
PAGE_SIZE_FIELD = 4
CHECKSUM_FLAG = 1 << 63
META_DIR_SUFFIX = "-litestream"

WAL_MAGIC_BIG_ENDIAN = 0x377F0683  # checksums over big-endian words
WAL_VERSION = 3007000
WAL_HEADER_SIZE = 32
WAL_FRAME_HEADER_SIZE = 24
_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
# Go's crc64.ISO polynomial, reversed (hash/crc64).
_CRC64_ISO = 0xD800000000000000


@cache
def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_ISO if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _raw_update(state: int, data: bytes) -> int:
    """The CRC's linear part: no initial or final inversion."""
    table = _crc64_table()
    for byte in data:
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


def crc64_iso(data: bytes, crc: int = 0) -> int:
    """Go's `crc64.Update(crc, crc64.MakeTable(crc64.ISO), data)` (small inputs: pure Python)."""
    return _raw_update(crc ^ _MASK64, data) ^ _MASK64


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    out, bit = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[bit]
        vector >>= 1
        bit += 1
    return out


@cache
def _zeros_operator(power: int) -> tuple[int, ...]:
    """The linear map "feed 2**power zero bytes", as the images of the 64 unit vectors."""
    if power == 0:
        return tuple(_raw_update(1 << bit, b"\0") for bit in range(64))
    half = _zeros_operator(power - 1)
    return tuple(_apply(half, column) for column in half)


def _feed_zeros(state: int, count: int) -> int:
    power = 0
    while count:
        if count & 1:
            state = _apply(_zeros_operator(power), state)
        count >>= 1
        power += 1
    return state


def patched_checksum(checksum: int, length: int, offset: int, old: bytes, new: bytes) -> int:
    """The CRC of a `length`-byte message whose bytes at `offset` change from `old` to `new`,
    from its CRC `checksum`, without reading the rest: for messages of one length the CRC's
    inversions cancel, so the CRCs differ by the linear part of the difference (which is zero
    before `offset`, and is carried through the bytes after it as zeros)."""
    difference = bytes(a ^ b for a, b in zip(old, new, strict=True))
    delta = _feed_zeros(_raw_update(0, difference), length - offset - len(difference))
    return checksum ^ delta


def _wal_checksum(data: bytes, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    for x0, x1 in struct.iter_unpack(">II", data):
        s0 = (s0 + x0 + s1) & _MASK32
        s1 = (s1 + x1 + s0) & _MASK32
    return s0, s1


def one_frame_wal(page_one: bytes, page_count: int, salt1: int, salt2: int) -> bytes:
    """A WAL holding one committed frame: page 1 as it is (the database is `page_count` pages)."""
    header = struct.pack(">6I", WAL_MAGIC_BIG_ENDIAN, WAL_VERSION, len(page_one), 1, salt1, salt2)
    h0, h1 = _wal_checksum(header)
    header += struct.pack(">2I", h0, h1)
    frame_start = struct.pack(">2I", 1, page_count)
    f0, f1 = _wal_checksum(frame_start + page_one, h0, h1)
    return header + frame_start + struct.pack(">4I", salt1, salt2, f0, f1) + page_one


def page_size_of(header: bytes) -> int:
    """A SQLite database's page size (its header, byte 16: 1 means 65536)."""
    (size,) = struct.unpack_from(">H", header, 16)
    return 65536 if size == 1 else size


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def hashed_length(handle: BinaryIO, page_size: int) -> int | None:
    """How many bytes an LTX file's checksum covers, from its page index (None when a page is
    not in the block format, whose layout this assumes).

    The checksum covers what the file says, with each page as it is before compression
    (superfly/ltx `Encoder.EncodePage` hashes the uncompressed page): the header, each page's
    header (6 bytes), size (4) and data (the page size), the empty page header that ends the
    pages (6), the page index and its size (8), and the trailer's post-apply checksum (8).
    The index, read from the file's end, gives each page's offset.
    """
    handle.seek(-(TRAILER_SIZE + INDEX_SIZE_SIZE), os.SEEK_END)
    index_end = handle.tell()
    (index_size,) = struct.unpack(">Q", handle.read(INDEX_SIZE_SIZE))
    handle.seek(index_end - index_size)
    index = handle.read(index_size)
    offsets, at = [], 0
    while True:
        pgno, at = _uvarint(index, at)
        if pgno == 0:
            break
        offset, at = _uvarint(index, at)
        _size, at = _uvarint(index, at)
        offsets.append(offset)
    for offset in offsets:
        handle.seek(offset)
        _pgno, flags = _PAGE_HEADER.unpack(handle.read(_PAGE_HEADER.size))
        if not flags & PAGE_FLAG_SIZE:
            return None
    per_page = _PAGE_HEADER.size + PAGE_SIZE_FIELD + page_size
    length: int = (
        LTX_HEADER_SIZE
        + len(offsets) * per_page
        + _PAGE_HEADER.size
        + index_size
        + INDEX_SIZE_SIZE
        + CHECKSUM_SIZE
    )
    return length


def meta_ltx_path(database: Path, level: int, txid: int) -> Path:
    """Where Litestream keeps a local LTX file (`DB.LTXPath`: `.<name>-litestream/ltx/<level>/`)."""
    meta = database.with_name(f".{database.name}{META_DIR_SUFFIX}")
    return meta / "ltx" / str(level) / f"{txid:016x}-{txid:016x}.ltx"


def resume_replica(database: Path, newest_level0: Path, replica_txid: int) -> str | None:
    """Write the WAL and the local level-0 file with which Litestream continues `database`'s
    replica at `replica_txid` (see the module). None when done, else why not (nothing written).

    `newest_level0`: a copy of the replica's newest level-0 file; `replica_txid`: the highest
    TXID of any of the replica's files, which the restored database is at.
    """
    wal = database.with_name(database.name + "-wal")
    if wal.exists() or database.with_name(f".{database.name}{META_DIR_SUFFIX}").exists():
        return "Litestream state or a WAL exists already"
    with newest_level0.open("rb") as handle:
        head = handle.read(LTX_HEADER_SIZE)
        if len(head) < LTX_HEADER_SIZE or not head.startswith(LTX_MAGIC):
            return "the newest level-0 file is not an LTX file"
        _, _, ltx_page_size, commit, min_txid, max_txid, *_ = _LTX_HEADER.unpack_from(head)
        if not min_txid == max_txid == replica_txid:
            return (
                f"the newest level-0 file ({min_txid}-{max_txid}) is not the replica's "
                f"position ({replica_txid})"
            )
        hashed = hashed_length(handle, ltx_page_size)
        if hashed is None:
            return "the newest level-0 file's pages are not all in LTX's block format"
        handle.seek(-CHECKSUM_SIZE, os.SEEK_END)
        checksum_at = handle.tell()
        (file_checksum,) = struct.unpack(">Q", handle.read(CHECKSUM_SIZE))
    with database.open("rb") as handle:
        first = handle.read(100)
        page_size = page_size_of(first)
        handle.seek(0)
        page_one = handle.read(page_size)
    page_count = database.stat().st_size // page_size
    if (page_size, page_count) != (ltx_page_size, commit):
        return (
            f"the database ({page_count} pages of {page_size} bytes) is not what the newest "
            f"level-0 file describes ({commit} pages of {ltx_page_size} bytes)"
        )
    salt1, salt2 = struct.unpack(">2I", secrets.token_bytes(8))
    old_fields = head[_WAL_FIELDS_OFFSET : _WAL_FIELDS_OFFSET + _WAL_FIELDS.size]
    new_fields = _WAL_FIELDS.pack(WAL_HEADER_SIZE, WAL_FRAME_HEADER_SIZE + page_size, salt1, salt2)
    checksum = patched_checksum(file_checksum, hashed, _WAL_FIELDS_OFFSET, old_fields, new_fields)
    local = meta_ltx_path(database, 0, replica_txid)
    local.parent.mkdir(parents=True)
    partial = local.with_name(local.name + ".tmp")
    shutil.copyfile(newest_level0, partial)
    with partial.open("r+b") as handle:
        handle.seek(_WAL_FIELDS_OFFSET)
        handle.write(new_fields)
        handle.seek(checksum_at)
        handle.write(struct.pack(">Q", CHECKSUM_FLAG | checksum))
    # No fsync: this is written into the restore's staging directory, and after a crash the
    # sidecar restores again into an empty data directory (it never starts on a partial one).
    os.replace(partial, local)
    wal.write_bytes(one_frame_wal(page_one, page_count, salt1, salt2))
    return None
