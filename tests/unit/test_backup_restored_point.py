"""`restore-at` says which moment it reached: each database's newest file at or before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pds_aws.backup.plan import DatabaseBackup, GenerationContents, restored_point

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def database(*offsets_s: float) -> DatabaseBackup:
    backup = DatabaseBackup()
    for n, offset in enumerate(offsets_s):
        backup.ltx_files.append((f"k{n}", f"ltx/0/{n}.ltx", AT + timedelta(seconds=offset)))
    return backup


def test_a_database_with_files_on_both_sides_is_as_of_its_newest_file_before() -> None:
    contents = GenerationContents(
        databases={
            # compacted: one L1 file 6 h before, the next 2 h after
            "account.sqlite": database(-6 * 3600, 2 * 3600),
            # untouched since before `at`: exactly as of `at`
            "sequencer.sqlite": database(-7200),
            # within the L0 window: a file 0.4 s before, the next 0.6 s after
            "actors/ab/did:plc:a/store.sqlite": database(-30, -0.4, 0.6),
        }
    )
    reached = restored_point(contents, contents.databases, AT)
    assert reached.asked == AT
    assert reached.point == AT - timedelta(hours=6)
    assert reached.behind == ("account.sqlite", "actors/ab/did:plc:a/store.sqlite")


def test_every_database_unchanged_after_at_restores_exactly_at() -> None:
    contents = GenerationContents(databases={"a.sqlite": database(-5), "b.sqlite": database(0)})
    reached = restored_point(contents, ["a.sqlite", "b.sqlite"], AT)
    assert (reached.point, reached.behind) == (AT, ())
