"""Litestream 0.5.17's shutdown race line is a warning; every real compaction error counts.

The race (Store.Close closes the databases before it stops the snapshot monitor) is explained
with its source lines next to `litestream.SHUTDOWN_MARK`. These tests pin the narrowness of the
exception: only that exact line, only once Litestream has announced its shutdown.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pds_aws.backup import litestream
from pds_aws.infra.filter_pattern import matching_events

# Seen from litestream 0.5.17 against moto, a second after start, stopped with SIGTERM.
SHUTDOWN = (
    'time=2026-11-30T09:49:30.170Z level=INFO msg="signal received, litestream shutting down" '
    "signal=terminated"
)
RACE = (
    'time=2026-11-30T09:49:30.174Z level=ERROR msg="compaction failed" system=store '
    'db=account.sqlite level=9 error="invalid argument"'
)
# Real compaction failures: other levels, other errors (a store that went away, a corrupt file).
LEVEL1_FAILURE = (
    'time=t level=ERROR msg="compaction failed" system=store db=store.sqlite level=1 '
    'error="invalid argument"'
)
STORE_GONE = (
    'time=t level=ERROR msg="compaction failed" system=store db=store.sqlite level=9 '
    'error="fetch dst level info: cannot determine L9 max ltx file for \\"/pds/a.sqlite\\": '
    's3: list objects: NoSuchBucket"'
)
PAGE_READ = (
    'time=t level=ERROR msg="compaction failed" system=store db=store.sqlite level=9 '
    'error="write snapshot ltx: read database page 3: invalid argument"'
)


def test_the_race_line_after_the_shutdown_mark_is_a_warning() -> None:
    assert litestream.SHUTDOWN_MARK in SHUTDOWN
    assert litestream.log_level(RACE, shutting_down=True) == "WARN"


def test_the_same_line_before_any_stop_still_counts() -> None:
    # Before a stop, `db.f` is nil only after a failed initialisation: a real fault.
    assert litestream.log_level(RACE) == "ERROR"


@pytest.mark.parametrize("line", [LEVEL1_FAILURE, STORE_GONE, PAGE_READ])
def test_real_compaction_errors_count_even_during_shutdown(line: str) -> None:
    assert litestream.log_level(line, shutting_down=True) == "ERROR"
    assert litestream.log_level(line) == "ERROR"


def test_the_replicator_forwards_levels_that_the_alarm_pattern_counts_right(
    tmp_path: Path,
) -> None:
    """The real forwarding path: a stand-in binary prints the lines of a stopping Litestream."""
    script = tmp_path / "litestream"
    lines = [RACE, SHUTDOWN, RACE, LEVEL1_FAILURE]
    script.write_text("#!/bin/sh\ncat <<'END'\n" + "\n".join(lines) + "\nEND\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    forwarded: list[str] = []
    replicator = litestream.Replicator(
        str(script),
        tmp_path / "unused.json",
        env={"PATH": "/usr/bin:/bin"},
        log=lambda level, message: forwarded.append(f"{level} {message}"),
    )
    assert replicator.process.wait(timeout=30) == 0  # the stand-in exits by itself
    assert replicator.stop(timeout=30) == 0  # joins the log reader
    assert [line.split(" ", 1)[0] for line in forwarded] == ["ERROR", "INFO", "WARN", "ERROR"]
    # What the BackupErrors metric filter (`"ERROR"`) counts: the race before the stop and the
    # level-1 failure; the demoted line no longer carries the term anywhere.
    assert matching_events('"ERROR"', forwarded) == [forwarded[0], forwarded[3]]
