"""Plain files (account keys, reserved keys, PLC operations) uploaded soon after they appear
(guides/BACKUP.md, "Replicate").
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pds_aws.backup.datadir import files_under
from pds_aws.backup.layout import (
    PLAIN_FILE_DIRS,
    classify,
    file_key,
)
from pds_aws.backup.logs import error, info
from pds_aws.backup.restore import DOWNLOAD_CONCURRENCY
from pds_aws.backup.store import BackupStore, StoreError


class FileMirror:
    """Uploads account keys, reserved keys and PLC operations soon after they appear."""

    def __init__(self, store: BackupStore, data_dir: Path, generation: str) -> None:
        self.store = store
        self.data_dir = data_dir
        self.generation = generation
        self.seen: dict[str, tuple[int, int]] = {}
        self._failing: set[str] = set()

    def _scan(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        roots = [self.data_dir / d for d in PLAIN_FILE_DIRS if (self.data_dir / d).is_dir()]
        for path in (p for root in roots for p in files_under(root)):
            rel = path.relative_to(self.data_dir).as_posix()
            pds_file = classify(rel)
            if pds_file is None or not pds_file.is_plain_file:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found[rel] = (stat.st_size, stat.st_mtime_ns)
        return found

    def adopt_restored(self, stored_sizes: Mapping[str, int]) -> int:
        """Count the files just restored from this generation as uploaded: they are its
        objects, byte for byte (`stored_sizes`: each object's size, from the restore's
        listing). A restart then uploads no key file again. Returns how many."""
        adopted = 0
        for rel, stamp in self._scan().items():
            if stored_sizes.get(rel) == stamp[0]:
                self.seen[rel] = stamp
                adopted += 1
        return adopted

    def sync(self) -> int:
        """One pass; returns how many uploads or deletions failed (retried next pass)."""
        now = self._scan()
        failures = 0
        changed = [(rel, stamp) for rel, stamp in now.items() if self.seen.get(rel) != stamp]

        def upload(rel: str) -> Exception | None:
            try:
                self.store.upload(self.data_dir / rel, file_key(self.generation, rel))
            except (StoreError, OSError) as exc:
                return exc
            return None

        if len(changed) > 1:  # a start seeding a generation: every key at once
            with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
                results = list(pool.map(upload, [rel for rel, _ in changed]))
        else:
            results = [upload(rel) for rel, _ in changed]
        for (rel, stamp), problem in zip(changed, results, strict=True):
            if problem is not None:
                failures += 1
                if rel not in self._failing:  # one ERROR per file until it recovers
                    error(f"uploading {rel} failed, retrying: {problem}")
                    self._failing.add(rel)
                continue
            self._failing.discard(rel)
            self.seen[rel] = stamp
            if len(changed) == 1:
                info(f"uploaded {rel}")
        if len(changed) > 1:
            info(f"uploaded {len(changed) - failures} of {len(changed)} key files")
        for rel in [r for r in self.seen if r not in now]:
            pds_file = classify(rel)
            if pds_file is not None and not pds_file.kept_after_removal:
                try:
                    self.store.delete(file_key(self.generation, rel))
                except StoreError as exc:
                    failures += 1
                    error(f"removing {rel} from the backup failed, retrying: {exc}")
                    continue
                info(f"removed {rel} from the backup (removed by the PDS)")
            del self.seen[rel]
        return failures
