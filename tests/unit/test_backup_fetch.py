"""What a restore fetches: only the objects it needs, never a path outside the data dir."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pds_aws.backup.fetch import ltx_timestamp, needed_ltx_files, newest_written
from pds_aws.backup.restore import is_safe_rel

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def ltx(level: int, lo: int, hi: int, hours: float) -> tuple[str, str, datetime]:
    name = f"{lo:016x}-{hi:016x}.ltx"
    return (f"k/{level:04x}/{name}", f"ltx/{level}/{name}", T0 + timedelta(hours=hours))


FILES = [
    ltx(9, 1, 100, 0),  # yesterday's snapshot
    ltx(9, 1, 400, 24),  # today's snapshot
    ltx(1, 1, 100, 6),
    ltx(1, 101, 400, 24),
    ltx(1, 401, 500, 30),
    ltx(0, 450, 500, 29),  # compacted into the L1 file above, kept 5 min
    ltx(0, 501, 501, 31),
    ltx(0, 502, 505, 32),
]


def names(files: list[tuple[str, str, datetime]]) -> list[str]:
    return [f[1] for f in files]


def test_latest_needs_the_newest_snapshot_and_what_came_after_it() -> None:
    assert names(needed_ltx_files(FILES, None)) == [
        FILES[1][1],  # the newest snapshot, not yesterday's
        FILES[4][1],  # the compaction after it
        FILES[6][1],  # level 0 after the last compaction
        FILES[7][1],
    ]


def test_a_point_in_time_starts_from_the_newest_snapshot_stored_before_it() -> None:
    at = T0 + timedelta(hours=12)
    needed = names(needed_ltx_files(FILES, at))
    assert needed[0] == FILES[0][1]  # yesterday's snapshot: today's is after T
    assert FILES[1][1] not in needed and FILES[3][1] in needed
    assert FILES[5][1] in needed  # level 0 stays: the exact points between compactions


def test_without_a_snapshot_or_with_unknown_names_everything_is_fetched() -> None:
    no_snapshot = [f for f in FILES if "/9/" not in f[1]]
    assert needed_ltx_files(no_snapshot, None) == no_snapshot
    odd = [*FILES, ("k/x", "ltx/0/not-a-txid.ltx", T0)]
    assert needed_ltx_files(odd, None) == odd


def test_paths_from_object_keys_must_stay_inside_the_data_directory() -> None:
    assert is_safe_rel("account.sqlite")
    assert is_safe_rel("actors/ab/did:plc:x/key")
    for bad in ("/etc/passwd", "/account.sqlite", "../x.sqlite", "actors/../../x", "a//b", ""):
        assert not is_safe_rel(bad), bad


def test_a_snapshot_listed_in_the_same_second_as_the_point_may_be_after_it() -> None:
    """S3 lists LastModified in whole seconds: a snapshot listed at 24:00:00 was written
    somewhere in [24:00:00, 24:00:01), possibly after 24:00:00.5."""
    at = T0 + timedelta(hours=24, milliseconds=500)
    assert names(needed_ltx_files(FILES, at))[0] == FILES[0][1]
    a_second_later = T0 + timedelta(hours=24, seconds=1)
    assert names(needed_ltx_files(FILES, a_second_later))[0] == FILES[1][1]


def test_the_exact_time_of_an_ltx_file_is_read_from_its_header(tmp_path: Path) -> None:
    written = datetime(2026, 11, 30, 12, 0, 0, 700_000, tzinfo=UTC)
    header = bytearray(100)
    header[0:4] = b"LTX1"
    struct.pack_into(">q", header, 32, int(written.timestamp() * 1000))
    (tmp_path / "a.ltx").write_bytes(bytes(header) + b"pages")
    assert ltx_timestamp(tmp_path / "a.ltx") == written
    (tmp_path / "b.ltx").write_bytes(b"not an ltx file")
    assert ltx_timestamp(tmp_path / "b.ltx") is None
    assert ltx_timestamp(tmp_path / "missing.ltx") is None


def test_the_newest_time_of_a_local_replica_is_its_newest_file(tmp_path: Path) -> None:
    assert newest_written(tmp_path) is None
    for level, name, when in ((9, "a", 100.0), (0, "b", 250.5), (1, "c", 200.0)):
        path = tmp_path / "ltx" / str(level) / f"{name}.ltx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (when, when))
    assert newest_written(tmp_path) == datetime.fromtimestamp(250.5, tz=UTC)
