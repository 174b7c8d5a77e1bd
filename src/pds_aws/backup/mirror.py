"""Plain files (account keys, reserved keys, PLC operations) uploaded soon after they appear,
each as its own object and all of them in `FILES` (bundle.py; guides/BACKUP.md, "Replicate").
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pds_aws.backup import bundle
from pds_aws.backup.datadir import files_under
from pds_aws.backup.layout import (
    PLAIN_FILE_DIRS,
    bundle_key,
    classify,
    file_key,
)
from pds_aws.backup.logs import error, info, warn
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
        # What FILES should hold: every file object of the generation this mirror knows the
        # bytes and ETag of; written after each pass that changed it.
        self.bundled: dict[str, bundle.Bundled] = {}
        self._bundle_stale = False
        self._bundle_failing = False

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

    def adopt_restored(
        self,
        stored_sizes: Mapping[str, int],
        etags: Mapping[str, str] | None = None,
        from_bundle: frozenset[str] = frozenset(),
    ) -> int:
        """Count the files just restored from this generation as uploaded: they are its
        objects, byte for byte (`stored_sizes`, `etags`: each object's size and ETag, from the
        restore's listing). A restart then uploads no key file again. Returns how many.

        `from_bundle`: those the restore took from FILES; FILES is written again at the next
        pass when any other one could be in it (written before FILES existed, or after it)."""
        adopted = 0
        etags = etags or {}
        for rel, stamp in self._scan().items():
            if stored_sizes.get(rel) != stamp[0]:
                continue
            self.seen[rel] = stamp
            adopted += 1
            if rel in etags:
                self.bundled[rel] = bundle.Bundled(etags[rel], (self.data_dir / rel).read_bytes())
                self._bundle_stale |= rel not in from_bundle
        return adopted

    def sync(self) -> int:
        """One pass; returns how many uploads or deletions failed (retried next pass)."""
        now = self._scan()
        failures = 0
        changed = [(rel, stamp) for rel, stamp in now.items() if self.seen.get(rel) != stamp]

        def upload(rel: str) -> Exception | None:
            try:
                data = (self.data_dir / rel).read_bytes()
                etag = self.store.put_bytes(file_key(self.generation, rel), data)
            except (StoreError, OSError) as exc:
                return exc
            if etag is not None:
                self.bundled[rel] = bundle.Bundled(etag, data)
                self._bundle_stale = True
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
                self._bundle_stale |= self.bundled.pop(rel, None) is not None
            del self.seen[rel]
        self._write_bundle()
        return failures

    def _write_bundle(self) -> None:
        """FILES, when a pass changed what it should hold. Not a failure of the pass when it
        cannot be written: the next pass tries again, and a restore meanwhile fetches the
        files FILES lacks one by one."""
        if not self._bundle_stale:
            return
        try:
            self.store.put_bytes(bundle_key(self.generation), bundle.encode(self.bundled))
        except StoreError as exc:
            if not self._bundle_failing:  # one WARN until it recovers
                warn(f"writing {bundle_key(self.generation)} failed, retrying: {exc}")
                self._bundle_failing = True
            return
        self._bundle_stale = self._bundle_failing = False
