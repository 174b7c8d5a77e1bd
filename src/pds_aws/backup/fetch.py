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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

SNAPSHOT_LEVEL = 9
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


def needed_ltx_files(files: Sequence[LtxFile], at: datetime | None) -> list[LtxFile]:
    """The subset of `files` a restore (latest: `at` None) needs; all of them when the names
    are not Litestream's or no snapshot qualifies (Litestream then decides, as before)."""
    parsed = [_parse(f) for f in files]
    if any(p is None for p in parsed):
        return list(files)
    items = [p for p in parsed if p is not None]
    snapshots = [p for p in items if p.level == SNAPSHOT_LEVEL and (at is None or p.stored <= at)]
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
