"""The sidecar's subcommands: run, health, drill, restore-at, status.

Log format (the stack's metric filter counts errors): one plain-text line per event on stderr,
starting with the level word: `INFO backup: ...`, `WARN backup: ...`, `ERROR backup: ...`.
Litestream's own lines are forwarded as `<LEVEL> litestream: <its line>`, with its
`level=ERROR` lines turned into `ERROR litestream: ...`, so the filter pattern `ERROR` counts
both. Secrets never reach the log: only paths, counts, object keys and AWS error codes do.

`run`, step by step:
1. Read `CURRENT` (the active generation; see `layout`). An empty backup prefix is a first boot:
   create a generation and point `CURRENT` at it. Objects under the prefix but no `CURRENT` is
   an error (not a pds-aws backup, or a damaged one).
2. The data directory must be empty when the generation holds data (a restore never mixes with
   or replaces files it did not restore); `lost+found` is ignored. A non-empty data directory
   with an empty generation is adopted: its files are replicated as they are (migration).
3. Restore into a staging directory inside the data directory: list the generation once,
   restore `account.sqlite` first (its `actor` table lists the live accounts, see `plan`), then
   in parallel every other database (its LTX objects fetched with parallel GETs into a local
   file replica, then one `litestream restore` each), every key file and reserved key;
   `PRAGMA quick_check` each database; move everything into place. Any failure: ERROR lines,
   staging removed, exit 1, never healthy, nothing written to the backup.
4. Become healthy (the PDS container may start), then wait until the PDS answers
   `PDS_HEALTH_URL`, uploading key files meanwhile. The PDS creates and migrates its databases
   inside `PDS.create`, before it listens, and opens SQLite with busy timeout 0: a Litestream
   already watching the directory takes write locks on each new database within ~250 ms and
   the migration fails with SQLITE_BUSY (migration 004 does not roll back: every restart then
   fails). So Litestream starts only once the PDS listens. `PDS_HEALTH_URL=none` (no PDS beside
   the sidecar: tests standing in for it, benchmarks) starts it right away.
5. Replicate into a NEW generation (ORIGIN `source` = the one restored): start `litestream
   replicate` (directory mode), upload every key file, wait until every restored database has
   its first snapshot there, record `seeded` in ORIGIN, then point `CURRENT` at it. Each
   generation is thus written by one Litestream lifetime from TXID 1; a restarted Litestream
   never reconciles with a replica it did not write (writes made while it does so were seen
   lost in tests), and the generation restored from stays untouched as history.
   The health marker now names Litestream's pid (`health` fails when it dies); mirror plain
   files every 0.5 s (upload when new or changed; delete the object of a vanished reserved key
   or PLC operation, never of an account key).
6. SIGTERM/SIGINT: drop the health marker, upload plain files a last time, wait until every
   database on disk is in the backup, SIGTERM Litestream (its final sync), exit 0 when it exits
   cleanly. A SIGTERM while waiting for the PDS (ECS stops the PDS first, it depends on us):
   when a database on disk was created or changed since the restore (size or mtime of it or
   its WAL), Litestream still starts, seeds and does this final sync: the PDS may have
   migrated, or acknowledged a write between two health probes. Otherwise the backup already
   holds exactly what is on disk (a PDS that never started: no new generation per crash) and
   only the key files are uploaded a last time.

`restore-at T`: walk back from the current generation along ORIGIN `source` to the newest one
already seeded at T, restore it as of T into a scratch directory, seed a new generation from it
(`litestream replicate -once -force-snapshot` + key files), point `CURRENT` at it. `restore-at
latest --generation ID` points `CURRENT` back at an existing generation. Nothing is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from pds_aws.backup import litestream
from pds_aws.backup.layout import (
    ACCOUNT_DATABASE,
    ACTORS_DIR,
    CURRENT_OBJECT,
    GENERATIONS_DIR,
    FileKind,
    classify,
    file_key,
    generation_prefix,
    is_generation_id,
    new_generation_id,
    origin_key,
)
from pds_aws.backup.plan import (
    SCRATCH_PREFIX,
    InvalidTimestamp,
    RestorePlan,
    build_restore_plan,
    litestream_timestamp,
    parse_timestamp,
    read_generation,
    replica_url,
    restore_timestamp,
    unexpected_at_start,
)
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import BackupStore, StoreError, open_store
from pds_aws.procs import pid_alive

RESTORE_CONCURRENCY = 8  # litestream restore processes at once (CPU-bound, small)
DOWNLOAD_CONCURRENCY = 32  # S3 GETs at once (latency-bound)
MIRROR_INTERVAL_S = 0.5
LITESTREAM_READY_TIMEOUT_S = 10.0
# ECS allows a stop timeout of up to 120 s; leave room for the last key uploads and exit.
LITESTREAM_STOP_TIMEOUT_S = 90.0
SEED_TIMEOUT_S = 600.0
SEED_POLL_S = 0.5
PDS_POLL_S = 0.5  # how often the PDS health URL is probed while waiting for the PDS
PDS_PROBE_TIMEOUT_S = 2.0
PDS_PROGRESS_S = 30.0  # one "still waiting" line this often
DISCOVERY_TIMEOUT_S = 20.0  # of the 120 s ECS stop timeout; Litestream needs ~2 s at most
HEALTH_FILE = "healthy.json"
LITESTREAM_CONFIG_FILE = "litestream.json"
STAGING_PREFIX = f"{SCRATCH_PREFIX}restore-"

_log_lock = threading.Lock()


def log(level: str, message: str) -> None:
    with _log_lock:
        print(f"{level} {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    log("INFO", f"backup: {message}")


def warn(message: str) -> None:
    log("WARN", f"backup: {message}")


def error(message: str) -> None:
    log("ERROR", f"backup: {message}")


class RestoreFailed(Exception):
    """The restore cannot be trusted; `problems` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# ---------------------------------------------------------------------------------------------
# Generations


def read_current(store: BackupStore) -> str | None:
    raw = store.get_bytes(CURRENT_OBJECT)
    if raw is None:
        return None
    generation = raw.decode("utf-8", "replace").strip()
    if not is_generation_id(generation):
        raise StoreError(
            f"{CURRENT_OBJECT} holds {generation[:40]!r}, not a generation id; point it at one "
            f"of `{GENERATIONS_DIR}/` with `pds-aws-backup restore-at latest --generation ID`"
        )
    return generation


def create_generation(store: BackupStore, origin: dict[str, str | None]) -> str:
    generation = new_generation_id(datetime.now(UTC), os.urandom(2))
    body = {"generation": generation, "created": _iso(datetime.now(UTC)), **origin}
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return generation


def read_origin(store: BackupStore, generation: str) -> dict[str, str | None]:
    raw = store.get_bytes(origin_key(generation))
    if raw is None:
        return {"generation": generation}
    try:
        body = json.loads(raw)
    except ValueError:
        return {"generation": generation}
    return body if isinstance(body, dict) else {"generation": generation}


def mark_seeded(store: BackupStore, generation: str) -> str:
    """Record when the generation holds every database and key: from then on it is the
    history of the data directory (used by restore-at to pick the generation covering T)."""
    body = read_origin(store, generation)
    seeded = _iso(datetime.now(UTC))
    body["seeded"] = seeded
    store.put_bytes(origin_key(generation), json.dumps(body, indent=2).encode())
    return seeded


def set_current(store: BackupStore, generation: str) -> None:
    store.put_bytes(CURRENT_OBJECT, f"{generation}\n".encode())


def generation_chain(store: BackupStore, start: str) -> list[dict[str, str | None]]:
    """`start` and the generations it was made from (ORIGIN `source`), newest first."""
    chain: list[dict[str, str | None]] = []
    seen: set[str] = set()
    generation: str | None = start
    while generation and generation not in seen and len(chain) < 10_000:
        seen.add(generation)
        origin = read_origin(store, generation)
        chain.append(origin)
        source = origin.get("source")
        generation = source if isinstance(source, str) and is_generation_id(source) else None
    return chain


def covering_generation(chain: list[dict[str, str | None]], at: datetime) -> str | None:
    """The newest generation of the chain that already held the whole data directory at `at`."""
    stamp = _iso(at)
    for origin in chain:
        seeded = origin.get("seeded") or origin.get("created")
        if seeded is not None and seeded <= stamp:
            return origin.get("generation")
    return None


def list_generations(store: BackupStore) -> list[str]:
    return [g for g in store.child_names(GENERATIONS_DIR) if is_generation_id(g)]


# ---------------------------------------------------------------------------------------------
# Restore


@dataclass
class RestoreReport:
    generation: str
    plan: RestorePlan | None = None
    databases: int = 0
    files: int = 0
    key_files: int = 0
    bytes: int = 0
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


def restore_generation(
    settings: Settings,
    store: BackupStore,
    generation: str,
    out_dir: Path,
    *,
    at: datetime | None = None,
) -> RestoreReport:
    """Restore one generation (latest, or as of `at`) into `out_dir`; raise RestoreFailed."""
    started = time.monotonic()
    report = RestoreReport(generation)
    contents = read_generation(store.list_objects(generation_prefix(generation) + "/"), generation)
    if contents.is_empty:
        return report
    env = litestream.litestream_env(os.environ)
    ts = litestream_timestamp(at) if at is not None else None
    # Against S3, fetch each database's LTX objects in bulk into a local file replica and
    # restore from there (see plan.file_replica_path); a file:// backup is read in place.
    ltx_mirror = (
        None
        if settings.backup_url.scheme == "file"
        else Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{SCRATCH_PREFIX}ltx-"))
    )

    def fetch(rels: list[str]) -> list[str]:
        if ltx_mirror is None:
            return []
        jobs = [
            (key, ltx_mirror / rel / local, stored)
            for rel in rels
            for key, local, stored in contents.databases[rel].ltx_files
        ]

        def get(job: tuple[str, Path, datetime]) -> str | None:
            key, dest, stored = job
            try:
                store.download(key, dest)
                # A file replica's times are its files' mtimes: keep S3's, or a point-in-time
                # restore would see every file as written now.
                os.utime(dest, (stored.timestamp(), stored.timestamp()))
            except (StoreError, OSError) as exc:
                return f"object {key}: {exc}"
            return None

        with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
            return [p for p in pool.map(get, jobs) if p]

    def restore_db(rel: str) -> str | None:
        backup = contents.databases.get(rel)
        db_ts = restore_timestamp(at, backup.newest_change if backup else None)
        if ltx_mirror is None:
            url = replica_url(
                settings.backup_url,
                generation,
                rel,
                endpoint=settings.s3_endpoint,
                region=settings.region,
            )
        else:
            url = f"file://{ltx_mirror / rel}"
        target = out_dir / rel
        try:
            litestream.restore_database(
                settings.litestream_bin, url, target, timestamp=db_ts, env=env
            )
        except litestream.LitestreamError as exc:
            return f"database {rel}: {exc}"
        problem = quick_check(target)
        return f"database {rel}: quick_check says {problem}" if problem else None

    def restore_file(rel: str) -> str | None:
        target = out_dir / rel
        try:
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
        with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
            file_results = list(pool.map(restore_file, plan.files))
        file_seconds = time.monotonic() - db_started
        db_started = time.monotonic()
        fetch_problems = fetch(rest)
        if fetch_problems:
            raise RestoreFailed(fetch_problems)
        fetch_seconds = time.monotonic() - db_started
        with ThreadPoolExecutor(max_workers=RESTORE_CONCURRENCY) as pool:
            db_results = list(pool.map(restore_db, rest))
        problems = [p for p in [*db_results, *file_results] if p]
        if problems:
            raise RestoreFailed(problems)
        db_seconds = time.monotonic() - db_started
    finally:
        if ltx_mirror is not None:
            shutil.rmtree(ltx_mirror, ignore_errors=True)

    report.databases = len(plan.databases)
    report.files = len(plan.files)
    report.key_files = sum(
        1 for rel in plan.files if (f := classify(rel)) and f.kind is FileKind.ACCOUNT_KEY
    )
    report.bytes = sum(p.stat().st_size for p in _files_under(out_dir))
    report.seconds = time.monotonic() - started
    when = f" as of {ts}" if ts else ""
    info(
        f"restored {len(plan.accounts)} accounts of generation {generation}{when} "
        f"({len(plan.deleted_accounts)} deleted accounts skipped)"
    )
    info(
        f"restored {report.databases} databases in {db_seconds:.2f} s (quick_check ok; "
        f"{fetch_seconds:.2f} s of it fetching their LTX objects)"
    )
    info(f"restored {report.files} key files and reserved keys in {file_seconds:.2f} s")
    return report


def _files_under(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in names:
            yield Path(dirpath) / name


# ---------------------------------------------------------------------------------------------
# Mirroring plain files (keys) while running


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
        actors = self.data_dir / ACTORS_DIR
        if not actors.is_dir():
            return found
        for path in _files_under(actors):
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


# ---------------------------------------------------------------------------------------------
# run / health


def _health_path(settings: Settings) -> Path:
    return settings.state_dir / HEALTH_FILE


def health(settings: Settings, args: argparse.Namespace) -> int:
    path = _health_path(settings)
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"unhealthy: no health marker at {path} (restore not finished or failed)")
        return 1
    for name in ("pid", "litestream_pid"):
        pid = marker.get(name)
        if name == "litestream_pid" and pid is None:
            continue  # restored, Litestream starts once the PDS is up
        if not isinstance(pid, int) or not pid_alive(pid):
            print(f"unhealthy: {name} {pid} is not running")
            return 1
    if marker.get("litestream_pid") is None:
        print(f"healthy: restored, waiting for the PDS to replicate {marker.get('generation')}")
    else:
        print(f"healthy: replicating generation {marker.get('generation')}")
    return 0


def wait_for_pds(
    pds_up: Callable[[], bool],
    stop: threading.Event,
    *,
    url: str,
    on_tick: Callable[[], object] = lambda: None,
    interval: float = PDS_POLL_S,
    progress_every: float = PDS_PROGRESS_S,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[str], None] = info,
) -> bool:
    """Probe until the PDS answers (True) or a stop signal arrives (False).

    `on_tick` runs before each probe (key uploads must not wait for the PDS); one progress
    line every `progress_every` seconds says how long we have waited.
    """
    started = clock()
    next_report = started + progress_every
    while True:
        on_tick()
        if pds_up():
            report(f"the PDS answers {url} after {clock() - started:.1f} s")
            return True
        now = clock()
        if now >= next_report:
            report(
                f"still waiting for the PDS at {url} ({now - started:.0f} s); Litestream starts "
                "once it answers (the PDS migrates its databases before it listens)"
            )
            next_report = now + progress_every
        if stop.wait(interval):
            return False


def pds_answers(url: str) -> bool:
    """True when `url` answers 2xx: the PDS has migrated its databases and listens."""
    try:
        with urllib.request.urlopen(url, timeout=PDS_PROBE_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _prepare_data_dir(data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"{SCRATCH_PREFIX}*"):  # left by a start that was killed
        shutil.rmtree(stale, ignore_errors=True)
    return unexpected_at_start(os.listdir(data_dir))


def _move_into_place(staging: Path, data_dir: Path) -> None:
    for entry in sorted(staging.iterdir()):
        os.replace(entry, data_dir / entry.name)
    staging.rmdir()


def _resolve_generation_for_run(store: BackupStore) -> str:
    current = read_current(store)
    if current is not None:
        return current
    if store.list_objects("")[:1]:
        raise StoreError(
            f"the backup prefix holds objects but no {CURRENT_OBJECT}: it is not a pds-aws "
            "backup or it is damaged; choose another BACKUP_URL prefix, or point "
            f"{CURRENT_OBJECT} at a generation with `pds-aws-backup restore-at latest "
            "--generation ID`"
        )
    generation = create_generation(store, {"reason": "first boot", "source": None, "at": None})
    mark_seeded(store, generation)
    set_current(store, generation)
    info(f"first boot: empty backup, created generation {generation}")
    return generation


def run(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    data_dir = settings.data_dir
    _health_path(settings).unlink(missing_ok=True)
    info(f"starting: data directory {data_dir}, backup {settings.backup_url}")
    store = open_store(settings)
    staging = data_dir / f"{STAGING_PREFIX}{os.getpid()}"
    restored: RestoreReport | None = None
    restored_stamps: dict[str, tuple[int, int]] = {}
    try:
        store.check_access()
        source = _resolve_generation_for_run(store)
        contents = read_generation(store.list_objects(generation_prefix(source) + "/"), source)
        blocking = _prepare_data_dir(data_dir)
        if not contents.is_empty:
            if blocking:
                error(
                    f"data directory {data_dir} is not empty ({', '.join(blocking[:5])}) but "
                    f"generation {source} holds a backup: the sidecar restores only into an "
                    "empty directory, never over or beside other files; move them away (or "
                    "use an empty PDS_DATA_DIRECTORY) and start again"
                )
                return 1
            staging.mkdir()
            restored = restore_generation(settings, store, source, staging)
            _move_into_place(staging, data_dir)
            restored_stamps = database_stamps(data_dir)
        elif blocking:
            warn(
                f"empty backup generation {source}: adopting the {len(blocking)} existing "
                f"entries of {data_dir} as they are"
            )
        else:
            info(f"generation {source} is empty: starting with an empty data directory")
        # A restored directory is replicated into a NEW generation, seeded from scratch by
        # this Litestream process: each generation is written by exactly one Litestream
        # lifetime from TXID 1, so no restarted Litestream ever has to reconcile its position
        # with a replica it did not write ("database behind replica"), and the generation we
        # restored from stays as it was (history for restore-at).
        generation = (
            source
            if restored is None
            else create_generation(store, {"reason": "task start", "source": source, "at": None})
        )
    except RestoreFailed as exc:
        shutil.rmtree(staging, ignore_errors=True)
        for problem in exc.problems:
            error(f"restore failed: {problem}")
        error(
            f"restore of {settings.backup_url} failed ({len(exc.problems)} problems); not "
            "becoming healthy and not replicating, the backup is untouched. Fix the cause "
            "above, or run `pds-aws-backup drill` to inspect, or go back with `restore-at`"
        )
        return 1
    except StoreError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        error(f"backup store: {exc}; not becoming healthy, the backup is untouched")
        return 1
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        error(f"restore failed on the data directory: {exc}; not becoming healthy")
        return 1

    # Signal handlers from here: a SIGTERM during the restore just ends us (nothing was
    # replicated yet, the backup is untouched).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mirror = FileMirror(store, data_dir, generation)
    # The PDS may write from the moment we are healthy: from then on a stop signal must not
    # abandon the seeding of the new generation (CURRENT would keep naming the old one).
    pds_may_write = False
    if settings.pds_health_url is not None:
        _write_health(settings, None, generation)
        pds_may_write = True
        info(
            f"healthy: restored {data_dir}; Litestream starts once the PDS answers "
            f"{settings.pds_health_url}"
        )
        if not wait_for_pds(
            lambda: pds_answers(str(settings.pds_health_url)),
            stop,
            url=settings.pds_health_url,
            on_tick=mirror.sync,
        ):
            if not databases_on_disk(data_dir) or (
                restored is not None and database_stamps(data_dir) == restored_stamps
            ):
                # Nothing the PDS could have written: the backup holds exactly this (no new
                # generation is seeded for a PDS that failed to start, e.g. in a crash loop).
                info("stopped before the PDS started; no database changed since the restore")
                _health_path(settings).unlink(missing_ok=True)
                failures = mirror.sync() and mirror.sync()  # one retry, as at any stop
                if failures:
                    error(f"{failures} key files could not be uploaded before stopping")
                return 1 if failures else 0
            info("stopped before the PDS answered: replicating the databases on disk first")
    return _replicate(settings, store, source, generation, restored, mirror, stop, pds_may_write)


def _replicate(
    settings: Settings,
    store: BackupStore,
    source: str,
    generation: str,
    restored: RestoreReport | None,
    mirror: FileMirror,
    stop: threading.Event,
    pds_may_write: bool,
) -> int:
    """Start Litestream, seed the new generation (after a restore), replicate until stopped."""
    data_dir = settings.data_dir
    config_path = settings.state_dir / LITESTREAM_CONFIG_FILE
    directory_url = replica_url(
        settings.backup_url,
        generation,
        None,
        endpoint=settings.s3_endpoint,
        region=settings.region,
    )
    litestream.write_config(config_path, data_dir, directory_url)
    replicator = litestream.Replicator(
        settings.litestream_bin,
        config_path,
        env=litestream.litestream_env(os.environ),
        log=log,
    )
    if not replicator.ready.wait(LITESTREAM_READY_TIMEOUT_S) and replicator.poll() is not None:
        _health_path(settings).unlink(missing_ok=True)
        error(f"litestream exited with {replicator.poll()} at start; the task must be replaced")
        return 1
    if pds_may_write:
        _write_health(settings, replicator.pid, generation)
    if restored is not None and restored.plan is not None:
        try:
            _seed(
                store,
                generation,
                set(restored.plan.databases),
                mirror,
                replicator,
                None if pds_may_write else stop,
            )
        except (StoreError, SeedFailed) as exc:
            _health_path(settings).unlink(missing_ok=True)
            error(
                f"seeding generation {generation} failed: {exc}; the task must be replaced. "
                f"CURRENT still names {source}, which is complete as restored"
                f"{' (without what the PDS wrote since this start)' if pds_may_write else ''}; "
                "the next start retries"
            )
            replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
            return 1
        try:
            moved = read_current(store)
        except StoreError as exc:
            moved = f"unreadable ({exc})"
        if moved != source:
            # An operator's restore-at ran meanwhile: theirs wins, this task must not serve.
            _health_path(settings).unlink(missing_ok=True)
            error(
                f"CURRENT changed to {moved} while this task restored {source}; not "
                "healthy: replace the task so it restores the new CURRENT"
            )
            replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
            return 1
        set_current(store, generation)
        info(f"generation {generation} holds every database and key: CURRENT points at it")
    else:
        mirror.sync()  # adopted files, if any
    _write_health(settings, replicator.pid, generation)
    info(f"{'' if pds_may_write else 'healthy: '}replicating {data_dir} to generation {generation}")
    return _replicate_until_stopped(settings, stop, mirror, replicator)


class SeedFailed(Exception):
    pass


def _seed(
    store: BackupStore,
    generation: str,
    databases: set[str],
    mirror: FileMirror,
    replicator: litestream.Replicator,
    stop: threading.Event | None,
) -> None:
    """Wait until Litestream has a first snapshot of every restored database in the new
    generation, and upload every key file to it. `stop` None: a stop signal does not end the
    wait (the PDS may have written: the final sync needs the new generation complete)."""
    started = time.monotonic()
    if mirror.sync():
        raise SeedFailed("could not upload every key file")
    while True:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        missing = databases - set(listing.databases)
        if not missing:
            break
        if replicator.poll() is not None:
            raise SeedFailed(f"litestream exited with {replicator.poll()}")
        if stop is not None and stop.is_set():
            raise SeedFailed("stopped by a signal")
        if time.monotonic() - started > SEED_TIMEOUT_S:
            raise SeedFailed(
                f"{len(missing)} databases not replicated after {SEED_TIMEOUT_S:.0f} s, "
                f"e.g. {sorted(missing)[0]}"
            )
        time.sleep(SEED_POLL_S)
    mark_seeded(store, generation)
    info(
        f"seeded generation {generation}: {len(databases)} databases and "
        f"{len(mirror.seen)} key files in {time.monotonic() - started:.2f} s"
    )


def _write_health(settings: Settings, litestream_pid: int | None, generation: str) -> None:
    """`litestream_pid` None: restored, waiting for the PDS before replicating."""
    marker = {
        "pid": os.getpid(),
        "litestream_pid": litestream_pid,
        "generation": generation,
        "since": _iso(datetime.now(UTC)),
    }
    path = _health_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, path)


def databases_on_disk(data_dir: Path) -> set[str]:
    found: set[str] = set()
    for path in _files_under(data_dir):
        rel = path.relative_to(data_dir).as_posix()
        pds_file = classify(rel)
        if pds_file is not None and pds_file.kind is FileKind.DATABASE:
            found.add(rel)
    return found


def database_stamps(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every database file and its WAL, shared-memory or journal file."""
    stamps: dict[str, tuple[int, int]] = {}
    for path in _files_under(data_dir):
        if ".sqlite" in path.name:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            stamps[path.relative_to(data_dir).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return stamps


def _wait_for_discovery(
    store: BackupStore, generation: str, data_dir: Path, replicator: litestream.Replicator
) -> None:
    """Before the final sync: wait until Litestream replicates every database on disk.

    Litestream finds a new database a moment (up to ~2 s) after it appears, and its final sync
    on SIGTERM covers only the databases it knows: an account created just before the stop
    would have its row in account.sqlite but no store.sqlite in the backup.
    """
    started = time.monotonic()
    while replicator.poll() is None:
        listing = read_generation(
            store.list_objects(generation_prefix(generation) + "/"), generation
        )
        missing = databases_on_disk(data_dir) - set(listing.databases)
        if not missing:
            return
        if time.monotonic() - started > DISCOVERY_TIMEOUT_S:
            error(
                f"{len(missing)} databases are not in the backup after "
                f"{DISCOVERY_TIMEOUT_S:.0f} s, e.g. {sorted(missing)[0]}; stopping anyway"
            )
            return
        time.sleep(SEED_POLL_S)


def _replicate_until_stopped(
    settings: Settings,
    stop: threading.Event,
    mirror: FileMirror,
    replicator: litestream.Replicator,
) -> int:
    exit_code = 0
    while not stop.wait(MIRROR_INTERVAL_S):
        mirror.sync()
        code = replicator.poll()
        if code is not None:
            error(f"litestream exited unexpectedly with {code}; the task must be replaced")
            _health_path(settings).unlink(missing_ok=True)
            mirror.sync()
            return 1
    _health_path(settings).unlink(missing_ok=True)
    info("stopping: final key upload and final Litestream sync")
    failures = mirror.sync()
    if failures:
        failures = mirror.sync()
    try:
        _wait_for_discovery(mirror.store, mirror.generation, mirror.data_dir, replicator)
    except StoreError as exc:
        error(f"cannot check that every database is in the backup: {exc}")
    code = replicator.stop(LITESTREAM_STOP_TIMEOUT_S)
    if failures:
        error(f"{failures} key files could not be uploaded before stopping")
        exit_code = 1
    if code != 0:
        error(f"litestream exited with {code} on stop: its final sync may be incomplete")
        exit_code = 1
    else:
        info("stopped: final sync done")
    return exit_code


# ---------------------------------------------------------------------------------------------
# drill, restore-at, status


def drill(settings: Settings, args: argparse.Namespace) -> int:
    started = time.monotonic()
    summary: dict[str, object] = {
        "ok": False,
        "generation": None,
        "accounts": 0,
        "databases": 0,
        "key_files": 0,
        "bytes": 0,
        "seconds": 0.0,
        "problems": [],
    }
    problems: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="pds-aws-drill-"))
    try:
        store = open_store(settings)
        store.check_access()
        generation = read_current(store)
        summary["generation"] = generation
        if generation is None:
            problems.append(f"no backup at {settings.backup_url} ({CURRENT_OBJECT} is missing)")
        else:
            report = restore_generation(settings, store, generation, scratch)
            if report.plan is None:
                problems.append(f"generation {generation} of {settings.backup_url} is empty")
            else:
                summary.update(
                    accounts=len(report.plan.accounts),
                    databases=report.databases,
                    key_files=report.key_files,
                    bytes=report.bytes,
                )
    except RestoreFailed as exc:
        problems.extend(exc.problems)
    except StoreError as exc:
        problems.append(str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary["problems"] = problems
    summary["ok"] = not problems
    summary["seconds"] = round(time.monotonic() - started, 3)
    for problem in problems:
        error(f"drill: {problem}")
    print(json.dumps(summary), flush=True)
    return 0 if not problems else 1


def restore_at_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        at = None if args.timestamp == "latest" else parse_timestamp(args.timestamp)
    except InvalidTimestamp as exc:
        error(str(exc))
        return 2
    if args.generation is not None and not is_generation_id(args.generation):
        error(
            f"--generation {args.generation!r} is not a generation id (like "
            "20261129T201500Z-1a2b); list them with `pds-aws-backup status`"
        )
        return 2
    try:
        result = restore_at(settings, at, args.generation)
    except RestoreFailed as exc:
        for problem in exc.problems:
            error(f"restore-at: {problem}")
        error("restore-at failed; CURRENT is unchanged and no history was touched")
        return 1
    except (StoreError, litestream.LitestreamError, ValueError) as exc:
        error(f"restore-at failed: {exc}; CURRENT is unchanged and no history was touched")
        return 1
    print(json.dumps(result), flush=True)
    return 0


def restore_at(settings: Settings, at: datetime | None, source: str | None) -> dict[str, object]:
    """Make a new current generation from `source` (default: current) as of `at` (None: latest).

    `at` is looked up along the source's history: the generation it was made from (ORIGIN
    `source`), and so on back, until one already held the data directory at `at`. Latest of
    another generation just points CURRENT back at it. The running sidecar keeps writing into
    its own generation: replace the task afterwards (the new task restores the new CURRENT).
    """
    store = open_store(settings)
    store.check_access()
    current = read_current(store)
    if current is None:
        raise ValueError(f"no backup at {settings.backup_url} ({CURRENT_OBJECT} is missing)")
    source = source or current
    if not store.list_objects(generation_prefix(source) + "/")[:1]:
        raise ValueError(f"generation {source} does not exist at {settings.backup_url}")
    if at is None:
        if source != current:
            set_current(store, source)
            info(f"CURRENT now points at generation {source} (was {current})")
        else:
            info(f"generation {source} is already current; nothing to do")
        return {"ok": True, "generation": source, "previous": current, "source": source, "at": None}

    chain = generation_chain(store, source)
    covering = covering_generation(chain, at)
    if covering is None:
        oldest = chain[-1].get("seeded") or chain[-1].get("created")
        raise ValueError(f"{_iso(at)} is before the oldest backup in this history ({oldest})")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="pds-aws-restore-at-"))
    try:
        data = scratch / "data"
        data.mkdir()
        report = restore_generation(settings, store, covering, data, at=at)
        if report.plan is None:
            raise ValueError(f"generation {covering} is empty")
        new = create_generation(
            store,
            {"reason": "restore-at", "source": covering, "at": _iso(at), "previous": current},
        )
        info(f"seeding generation {new} from {covering} as of {_iso(at)}")
        config = scratch / LITESTREAM_CONFIG_FILE
        url = replica_url(
            settings.backup_url, new, None, endpoint=settings.s3_endpoint, region=settings.region
        )
        litestream.write_config(config, data, url)
        litestream.replicate_once(
            settings.litestream_bin, config, env=litestream.litestream_env(os.environ)
        )
        mirror = FileMirror(store, data, new)
        if mirror.sync():
            raise StoreError(f"could not upload every key file into generation {new}")
        seeded = read_generation(store.list_objects(generation_prefix(new) + "/"), new)
        missing = sorted(set(report.plan.databases) - set(seeded.databases))
        if missing:
            raise StoreError(f"generation {new} lacks {len(missing)} databases: {missing[:3]}")
        mark_seeded(store, new)
        set_current(store, new)
        info(f"CURRENT now points at generation {new} (was {current}); replace the task")
        return {
            "ok": True,
            "generation": new,
            "previous": current,
            "source": covering,
            "at": _iso(at),
            "accounts": len(report.plan.accounts),
            "databases": report.databases,
            "seconds": round(time.monotonic() - started, 3),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def status(settings: Settings, args: argparse.Namespace) -> int:
    try:
        store = open_store(settings)
        store.check_access()
        current = read_current(store)
        generations = list_generations(store)
        databases: dict[str, str | None] = {}
        files = 0
        if current is not None:
            contents = read_generation(
                store.list_objects(generation_prefix(current) + "/"), current
            )
            databases = {
                rel: _iso(db.newest_change) if db.newest_change else None
                for rel, db in sorted(contents.databases.items())
            }
            files = len(contents.files)
    except StoreError as exc:
        error(f"status: {exc}")
        return 1
    changes = [v for v in databases.values() if v]
    print(
        json.dumps(
            {
                "backup_url": str(settings.backup_url),
                "current_generation": current,
                "generations": generations,
                "databases": databases,
                "database_count": len(databases),
                "files": files,
                "newest_change": max(changes) if changes else None,
                "oldest_change": min(changes) if changes else None,
            }
        ),
        flush=True,
    )
    return 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
