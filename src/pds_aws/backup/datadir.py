"""The data directory as the sidecar sees it: its databases, their change stamps, staging."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from pds_aws.backup.layout import (
    FileKind,
    classify,
)
from pds_aws.backup.plan import (
    SCRATCH_PREFIX,
    unexpected_at_start,
)

STAGING_PREFIX = f"{SCRATCH_PREFIX}restore-"


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in names:
            yield Path(dirpath) / name


def databases_on_disk(data_dir: Path) -> set[str]:
    found: set[str] = set()
    for path in files_under(data_dir):
        rel = path.relative_to(data_dir).as_posix()
        pds_file = classify(rel)
        if pds_file is not None and pds_file.kind is FileKind.DATABASE:
            found.add(rel)
    return found


def database_stamps(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every database file and its WAL, shared-memory or journal file."""
    stamps: dict[str, tuple[int, int]] = {}
    for path in files_under(data_dir):
        if ".sqlite" in path.name:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            stamps[path.relative_to(data_dir).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return stamps


def prepare_data_dir(data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"{SCRATCH_PREFIX}*"):  # left by a start that was killed
        shutil.rmtree(stale, ignore_errors=True)
    return unexpected_at_start(os.listdir(data_dir))


def move_into_place(staging: Path, data_dir: Path) -> None:
    for entry in sorted(staging.iterdir()):
        os.replace(entry, data_dir / entry.name)
    staging.rmdir()
