"""Which LTX objects of a database a restore needs (pure): the newest snapshot at or before
the target, and the files after it; never older snapshots nor what later levels supersede.

Litestream 0.5 names a file `<level>/<min TXID>-<max TXID>.ltx` (16 hex digits each); level 9
holds snapshots (the whole database at max TXID), levels 1-8 compactions, level 0 each sync.
A restore applies a snapshot and then every file after it in TXID order, taking the highest
level that covers a range. For the latest state that is: the newest snapshot, the compacted
files after it, and the level-0 files after the last compaction. For a point in time, every
level-0 file after the snapshot stays (they give the exact points between compactions) and
the snapshot is the newest one stored at or before that time.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SNAPSHOT_LEVEL = 9
# S3 (and moto) list an object's LastModified in whole seconds: an object listed as stored at
# L was written in [L, L + 1 s). Only the LTX header holds the exact time (milliseconds).
STORED_RESOLUTION = timedelta(seconds=1)
# LTX header (superfly/ltx, Header.MarshalBinary): "LTX1", then big-endian fields; the
# transaction's time, milliseconds since the epoch, is the int64 at byte 32.
LTX_MAGIC = b"LTX1"
_LTX_TIMESTAMP = struct.Struct(">q")
_LTX_TIMESTAMP_OFFSET = 32
_LOCAL = re.compile(r"^ltx/(\d+)/([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")

# (object key, path in a local file replica: ltx/<level>/<min>-<max>.ltx, when stored)
LtxFile = tuple[str, str, datetime]


@dataclass(frozen=True)
class _Parsed:
    level: int
    min_txid: int
    max_txid: int
    stored: datetime
    entry: LtxFile


def _parse(entry: LtxFile) -> _Parsed | None:
    match = _LOCAL.match(entry[1])
    if match is None:
        return None
    return _Parsed(int(match[1]), int(match[2], 16), int(match[3], 16), entry[2], entry)


def max_txid(files: Sequence[LtxFile]) -> int:
    """The highest TXID any of `files` reaches (0 for none): the replica's position."""
    parsed = [_parse(f) for f in files]
    return max((p.max_txid for p in parsed if p is not None), default=0)


def position_file(files: Sequence[LtxFile]) -> LtxFile | None:
    """The level-0 file at the replica's position (its highest TXID), when it is stored:
    Litestream keeps the newest level-0 file when it deletes compacted ones."""
    parsed = [p for p in map(_parse, files) if p is not None]
    top = max((p.max_txid for p in parsed), default=0)
    return next((p.entry for p in parsed if p.level == 0 and p.min_txid == p.max_txid == top), None)


def needed_ltx_files(files: Sequence[LtxFile], at: datetime | None) -> list[LtxFile]:
    """The subset of `files` a restore (latest: `at` None) needs; all of them when the names
    are not Litestream's or no snapshot qualifies (Litestream then decides, as before)."""
    parsed = [_parse(f) for f in files]
    if any(p is None for p in parsed):
        return list(files)
    items = [p for p in parsed if p is not None]
    # A snapshot listed in the same second as `at` may be after it: only one listed a whole
    # second before `at` is surely at or before it (an older one only costs a larger fetch).
    snapshots = [
        p
        for p in items
        if p.level == SNAPSHOT_LEVEL and (at is None or p.stored + STORED_RESOLUTION <= at)
    ]
    if not snapshots:
        return list(files)
    base = max(snapshots, key=lambda p: p.max_txid)
    after = [p for p in items if p.level != SNAPSHOT_LEVEL and p.max_txid > base.max_txid]
    if at is None:
        compacted = [p.max_txid for p in after if p.level > 0]
        # Level-0 files a compaction already holds are not needed for the latest state.
        covered = max(compacted, default=base.max_txid)
        after = [p for p in after if p.level > 0 or p.max_txid > covered]
    return [base.entry, *(p.entry for p in sorted(after, key=lambda p: (p.min_txid, -p.level)))]


def ltx_timestamp(path: Path) -> datetime | None:
    """The exact time an LTX file's transaction was written (its header), or None when the
    file is not an LTX file."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_LTX_TIMESTAMP_OFFSET + _LTX_TIMESTAMP.size)
    except OSError:
        return None
    if len(head) < _LTX_TIMESTAMP_OFFSET + _LTX_TIMESTAMP.size or not head.startswith(LTX_MAGIC):
        return None
    (millis,) = _LTX_TIMESTAMP.unpack_from(head, _LTX_TIMESTAMP_OFFSET)
    if millis <= 0:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def newest_written(replica: Path) -> datetime | None:
    """The newest time among a local file replica's LTX files (their mtimes, set from their
    headers by the restore), or None when it holds none."""
    times = [path.stat().st_mtime for path in replica.glob("ltx/*/*.ltx")]
    return datetime.fromtimestamp(max(times), tz=UTC) if times else None
