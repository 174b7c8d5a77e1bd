"""Step 1 of the contract: restore one generation into a directory, fail closed
(guides/BACKUP.md, "Start: restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from pds_aws.backup import bundle, litestream
from pds_aws.backup.datadir import files_under
from pds_aws.backup.fetch import (
    LtxFile,
    ltx_timestamp,
    max_txid,
    needed_ltx_files,
    newest_written,
    position_file,
)
from pds_aws.backup.layout import (
    ACCOUNT_DATABASE,
    FileKind,
    bundle_key,
    classify,
    file_key,
    generation_prefix,
)
from pds_aws.backup.logs import info, warn
from pds_aws.backup.plan import (
    SCRATCH_PREFIX,
    GenerationContents,
    RestorePlan,
    build_restore_plan,
    litestream_timestamp,
    read_generation,
    restore_timestamp,
    settings_replica_url,
)
from pds_aws.backup.resume import resume_replica
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError
from pds_aws.errors import PdsAwsError

RESTORE_CONCURRENCY = 8  # litestream restore processes at once (CPU-bound, small)

DOWNLOAD_CONCURRENCY = 32  # S3 GETs at once (latency-bound)
# The databases are restored in this many chunks, each one's LTX objects fetched while the
# chunk before is restored: the store and this machine's CPU work at the same time.
PIPELINE_CHUNKS = 8
RESUME_REASONS_LOGGED = 5


class RestoreFailed(PdsAwsError):
    """The restore cannot be trusted; `problems` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class RestoreReport:
    generation: str
    plan: RestorePlan | None = None
    databases: int = 0
    files: int = 0
    key_files: int = 0
    bytes: int = 0
    gets: int = 0  # LTX objects fetched (one GET each)
    resumed: set[str] = field(default_factory=set)  # Litestream continues their replica
    from_bundle: frozenset[str] = frozenset()  # plain files taken from FILES (bundle.py)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.plan is None


def quick_check(path: Path) -> str | None:
    """None when `PRAGMA quick_check` says ok, else what it said."""
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"cannot open: {exc}"
    result = "; ".join(str(r[0]) for r in rows)
    return None if result == "ok" else result


def read_live_dids(account_db: Path) -> frozenset[str] | None:
    """The DIDs of the `actor` table; None when the table is not there."""
    conn = sqlite3.connect(account_db, timeout=30)
    try:
        return frozenset(row[0] for row in conn.execute("SELECT did FROM actor"))
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def crash_hints(account_db: Path, dids: list[str]) -> list[str]:
    """What to do when accounts were created moments before a crash: Litestream replicated
    their `actor` row but had not yet found their new store.sqlite."""
    if not dids:
        return []
    created: list[str] = []
    try:
        conn = sqlite3.connect(account_db, timeout=30)
        try:
            for did in dids:
                row = conn.execute('SELECT "createdAt" FROM actor WHERE did = ?', (did,)).fetchone()
                if row and row[0]:
                    created.append(str(row[0]))
        finally:
            conn.close()
    except sqlite3.Error:
        pass
    when = f" (created {min(created)})" if created else ""
    return [
        f"if the task stopped abruptly within seconds of creating {len(dids)} account(s){when}, "
        "their store never reached the backup: restore the state from just before that "
        "creation with `pds-aws-backup restore-at TIMESTAMP` (`pds-aws backup restore --at`), "
        "which loses only those last seconds, then replace the task"
    ]


def is_safe_rel(rel: str) -> bool:
    """Whether a path from an object key stays inside the data directory once joined."""
    path = PurePosixPath(rel)
    return (
        bool(rel)
        and not rel.startswith("/")
        and "\\" not in rel
        and all(part not in ("", ".", "..") for part in rel.split("/"))
        and not path.is_absolute()
    )


def restore_generation(
    settings: Settings,
    store: BackupStore,
    generation: str,
    out_dir: Path,
    *,
    at: datetime | None = None,
    contents: GenerationContents | None = None,
    resume: bool = False,
) -> RestoreReport:
    """Restore one generation (latest, or as of `at`) into `out_dir`; raise RestoreFailed.

    `contents`: the generation's listing when the caller already has it (one LIST less).
    `resume`: the restored databases stay in this generation (the sidecar's start): also write
    the state with which Litestream continues each one's replica (resume.py); those it could
    are `report.resumed`.
    """
    started = time.monotonic()
    report = RestoreReport(generation)
    if contents is None:
        contents = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
    if contents.is_empty:
        return report
    escaping = [rel for rel in [*contents.databases, *contents.files] if not is_safe_rel(rel)]
    if escaping:
        raise RestoreFailed(
            [
                f"object for {rel!r} in generation {generation} would be written outside the "
                "data directory (absolute path, `..` or empty part): refused; the backup is "
                "damaged or was written by something else"
                for rel in sorted(escaping)[:10]
            ]
        )
    env = litestream.litestream_env(os.environ)
    ts = litestream_timestamp(at) if at is not None else None
    # Against S3, fetch each database's LTX objects in bulk into a local file replica and
    # restore from there (see plan.file_replica_path); a file:// backup is read in place.
    ltx_mirror = (
        None
        if settings.backup_url.scheme == "file"
        else Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{SCRATCH_PREFIX}ltx-"))
    )
    resume = resume and at is None

    def replica_dir(rel: str) -> Path:
        """Where a database's LTX files are on this machine: fetched, or a file backup."""
        if ltx_mirror is not None:
            return ltx_mirror / rel
        return Path(settings_replica_url(settings, generation, rel).removeprefix("file://"))

    def needed(rel: str) -> list[LtxFile]:
        files = contents.databases[rel].ltx_files
        wanted = needed_ltx_files(files, at)
        position = position_file(files) if resume else None
        return wanted if position is None or position in wanted else [*wanted, position]

    def fetch(rels: list[str]) -> list[str]:
        if ltx_mirror is None:
            return []
        # Only what the restore needs: the newest snapshot at or before the target and the
        # files after it (fetch.needed_ltx_files), not every object of the database.
        jobs = [
            (key, ltx_mirror / rel / local, stored)
            for rel in rels
            for key, local, stored in needed(rel)
        ]
        report.gets += len(jobs)

        def get(job: tuple[str, Path, datetime]) -> str | None:
            key, dest, stored = job
            try:
                store.download(key, dest)
                # A file replica's times are its files' mtimes (Litestream picks the files of
                # a point in time by them): the exact time from the LTX header, as Litestream
                # reads it from S3's object metadata; S3's whole-second LastModified could put
                # a file written up to 1 s after the point in time before it.
                written = (ltx_timestamp(dest) or stored).timestamp()
                os.utime(dest, (written, written))
            except (StoreError, OSError) as exc:
                return f"object {key}: {exc}"
            return None

        with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
            return [p for p in pool.map(get, jobs) if p]

    def restore_db(rel: str) -> str | None:
        backup = contents.databases.get(rel)
        newest = backup.newest_change if backup else None
        if ltx_mirror is not None and at is not None:
            newest = newest_written(ltx_mirror / rel) or newest
        db_ts = restore_timestamp(at, newest)
        if ltx_mirror is None:
            url = settings_replica_url(settings, generation, rel)
        else:
            url = f"file://{ltx_mirror / rel}"
        target = out_dir / rel
        try:
            litestream.restore_database(
                settings.litestream_bin, url, target, timestamp=db_ts, env=env
            )
        except litestream.LitestreamError as exc:
            return f"database {rel}: {exc}"
        return checked(rel, target)

    def checked(rel: str, path: Path) -> str | None:
        problem = quick_check(path)
        return f"database {rel}: quick_check says {problem}" if problem else None

    def each(work: Callable[[str], str | None], rels: list[str]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=RESTORE_CONCURRENCY) as pool:
            return list(pool.map(work, rels))

    def restore_dbs(rels: list[str]) -> list[str | None]:
        if ltx_mirror is None or at is not None or len(rels) < 2:
            return each(restore_db, rels)
        # The latest state of many databases: one Litestream process for all of them
        # (litestream.restore_latest_many), each checked, then moved into place.
        scratch = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{SCRATCH_PREFIX}db-"))
        try:
            try:
                litestream.restore_latest_many(
                    settings.litestream_bin,
                    [(f"file://{ltx_mirror / rel}", scratch / "db" / rel) for rel in rels],
                    scratch / "litestream.yml",
                    env=env,
                )
            except litestream.LitestreamError as exc:
                # One restore each instead: slower, and its messages name each database.
                warn(f"{exc}; restoring the {len(rels)} databases one by one instead")
                return each(restore_db, rels)

            def check_and_move(rel: str) -> str | None:
                restored = scratch / "db" / rel
                problem = checked(rel, restored)
                if problem is None:
                    target = out_dir / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(restored, target)
                return problem

            return each(check_and_move, rels)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def resume_one(rel: str) -> str | None:
        files = contents.databases[rel].ltx_files
        position = position_file(files)
        if position is None:
            return "no level-0 file at the replica's position is stored"
        try:
            return resume_replica(out_dir / rel, replica_dir(rel) / position[1], max_txid(files))
        except OSError as exc:
            return str(exc)

    reasons: dict[str, str | None] = {}  # why each database is not resumed; None: it is

    def restore_chunk(rels: list[str]) -> list[str | None]:
        results = restore_dbs(rels)
        if resume and not any(results):
            reasons.update(zip(rels, each(resume_one, rels), strict=True))
        return results

    def restore_pipelined(rels: list[str]) -> tuple[list[str | None], float]:
        """Restore (and resume) `rels` chunk by chunk, fetching the next chunk's LTX objects
        meanwhile; returns the problems and the seconds spent fetching."""
        results: list[str | None] = []
        fetching = 0.0
        size = max(1, -(-len(rels) // PIPELINE_CHUNKS))
        with ThreadPoolExecutor(max_workers=1) as behind:
            restoring = None
            for start in range(0, len(rels), size):
                chunk = rels[start : start + size]
                fetched = time.monotonic()
                fetch_problems = fetch(chunk)
                fetching += time.monotonic() - fetched
                if fetch_problems:
                    raise RestoreFailed(fetch_problems)
                if restoring is not None:
                    results += restoring.result()
                restoring = behind.submit(restore_chunk, chunk)
            if restoring is not None:
                results += restoring.result()
        return results, fetching

    def log_resumed() -> None:
        report.resumed = {rel for rel, reason in reasons.items() if reason is None}
        info(
            f"Litestream resumes {len(report.resumed)} of {len(reasons)} databases at their "
            "restored position (nothing of them is uploaded again)"
        )
        others = sorted((rel, reason) for rel, reason in reasons.items() if reason is not None)
        for rel, reason in others[:RESUME_REASONS_LOGGED]:
            warn(f"database {rel} not resumed: {reason}; Litestream uploads it whole once")
        if len(others) > RESUME_REASONS_LOGGED:
            warn(f"... and {len(others) - RESUME_REASONS_LOGGED} more databases not resumed")

    def bundled_files() -> dict[str, bytes]:
        """The plain files FILES holds as their objects are now: one GET for all of them."""
        if not contents.has_bundle:
            return {}
        raw = store.get_bytes(bundle_key(generation))
        return bundle.current_bytes(bundle.decode(raw or b""), contents.file_etags)

    def restore_file(rel: str) -> str | None:
        target = out_dir / rel
        try:
            if rel in bundled:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(bundled[rel])
            else:
                store.download(file_key(generation, rel), target)
        except StoreError as exc:
            return f"file {rel}: {exc}"
        pds_file = classify(rel)
        is_key = pds_file is not None and pds_file.kind is FileKind.ACCOUNT_KEY
        if is_key and target.stat().st_size == 0:
            return f"file {rel}: the account key is empty in the backup"
        return None

    try:
        live: frozenset[str] | None = None
        if ACCOUNT_DATABASE in contents.databases:
            account_problems = fetch([ACCOUNT_DATABASE])
            if not account_problems:
                problem = restore_db(ACCOUNT_DATABASE)
                account_problems = [problem] if problem else []
            if account_problems:
                raise RestoreFailed(account_problems)
            live = read_live_dids(out_dir / ACCOUNT_DATABASE)
        plan = build_restore_plan(contents, live)
        report.plan = plan
        if plan.problems:
            raise RestoreFailed(
                plan.problems + crash_hints(out_dir / ACCOUNT_DATABASE, plan.accounts_without_store)
            )

        rest = [rel for rel in plan.databases if rel != ACCOUNT_DATABASE]
        db_started = time.monotonic()
        wanted = set(plan.files)
        bundled = {rel: data for rel, data in bundled_files().items() if rel in wanted}
        report.from_bundle = frozenset(bundled)
        with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
            file_results = list(pool.map(restore_file, plan.files))
        file_seconds = time.monotonic() - db_started
        db_started = time.monotonic()
        db_results, fetch_seconds = restore_pipelined(rest)
        problems = [p for p in [*db_results, *file_results] if p]
        if problems:
            raise RestoreFailed(problems)
        if resume:
            if ACCOUNT_DATABASE in plan.databases:
                reasons[ACCOUNT_DATABASE] = resume_one(ACCOUNT_DATABASE)
            log_resumed()
        db_seconds = time.monotonic() - db_started
    finally:
        if ltx_mirror is not None:
            shutil.rmtree(ltx_mirror, ignore_errors=True)

    report.databases = len(plan.databases)
    report.files = len(plan.files)
    report.key_files = sum(
        1 for rel in plan.files if (f := classify(rel)) and f.kind is FileKind.ACCOUNT_KEY
    )
    report.bytes = sum(p.stat().st_size for p in files_under(out_dir))
    report.seconds = time.monotonic() - started
    when = f" as of {ts}" if ts else ""
    info(
        f"restored {len(plan.accounts)} accounts of generation {generation}{when} "
        f"({len(plan.deleted_accounts)} deleted accounts skipped)"
    )
    info(
        f"restored {report.databases} databases in {db_seconds:.2f} s (quick_check ok; "
        f"{report.gets} LTX objects fetched, "
        f"{fetch_seconds:.2f} s of it fetching their LTX objects)"
    )
    info(
        f"restored {report.files} key files and reserved keys in {file_seconds:.2f} s "
        f"({len(report.from_bundle)} from {bundle_key(generation)}, "
        f"{report.files - len(report.from_bundle)} fetched one by one)"
    )
    return report
