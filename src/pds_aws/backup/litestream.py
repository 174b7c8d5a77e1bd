"""Running Litestream 0.5: restores (one database, or many in one process), the replicate
child, a one-shot sync."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pds_aws.backup.plan import litestream_config
from pds_aws.errors import PdsAwsError

UNIX_PATH_MAX = 100  # with room to spare below Linux's sun_path (108 bytes)
RESTORE_TIMEOUT_S = 900.0
ONCE_TIMEOUT_S = 900.0
_PR_SET_PDEATHSIG = 1


class LitestreamError(PdsAwsError):
    pass


def litestream_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Our environment without AWS_CA_BUNDLE: when it is set at all, Litestream's S3 client
    fails (`unable to add custom RootCAs HTTPClient`); the system roots serve real S3."""
    return {k: v for k, v in environ.items() if k != "AWS_CA_BUNDLE"}


def _run(
    args: list[str], what: str, *, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run one Litestream command to its end; raise when it does not end within `timeout`."""
    try:
        return subprocess.run(
            args, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LitestreamError(f"{what} timed out after {timeout:.0f} s") from exc


def _last_line(lines: list[str]) -> str:
    return lines[-1] if lines else "no output"


def restore_database(
    binary: str,
    replica_url: str,
    output: Path,
    *,
    timestamp: str | None,
    env: Mapping[str, str],
) -> None:
    """Restore one database; raise with Litestream's own message when it fails.

    No `-if-replica-exists`: the caller restores only databases the listing showed, so
    "no backup found" here is a failure, never a silent empty database.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    args = [binary, "restore", "-o", str(output)]
    if timestamp is not None:
        args += ["-timestamp", timestamp]
    args.append(replica_url)
    done = _run(args, "litestream restore", env=env, timeout=RESTORE_TIMEOUT_S)
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LitestreamError(f"litestream restore exited {done.returncode}: {_last_line(detail)}")


# `replicate` logs this before each database it restores (cmd/litestream/replicate.go,
# restoreIfNeeded); the error it exits with does not name the database.
_RESTORING = re.compile(r'msg="attempting restore before replication" path=(\S+)')


def restore_latest_many(
    binary: str,
    restores: Sequence[tuple[str, Path]],
    config: Path,
    *,
    env: Mapping[str, str],
) -> None:
    """Restore many databases to their latest state in one Litestream process.

    A Litestream process costs about 30 ms of CPU to start (a 39 MB Go binary), which is most
    of a small database's restore: 1,000 `litestream restore` processes take 15 s of a 2-core
    machine, one process restoring the same 1,000 takes 2 s. Litestream restores many
    databases in one process only at the start of `replicate`, for each configured database
    with `restore-if-db-not-exists` (cmd/litestream/replicate.go, restoreIfNeeded: the same
    `Replica.Restore` as `litestream restore` without `-timestamp`). `-exec true` makes that
    replicate stop as soon as it has started. Every output path must not exist yet (an
    existing one is skipped) and must be a scratch path: Litestream may start replicating a
    restored database to its (scratch) replica before it stops, so the caller checks each
    output and moves only the database file. A database with no backup is left missing
    (Litestream logs "no backup found" and goes on): that raises here, as does any failure.
    """
    config.parent.mkdir(parents=True, exist_ok=True)
    dbs = [
        {"path": str(output), "restore-if-db-not-exists": True, "replica": {"url": url}}
        for url, output in restores
    ]
    config.write_text(json.dumps({"dbs": dbs}, indent=2))
    for _, output in restores:
        output.parent.mkdir(parents=True, exist_ok=True)
    args = [binary, "replicate", "-no-expand-env", "-config", str(config), "-exec", "true"]
    what = f"litestream restore of {len(restores)} databases"
    done = _run(args, what, env=env, timeout=RESTORE_TIMEOUT_S)
    if done.returncode != 0:
        output_lines = (done.stderr + done.stdout).splitlines()
        started = [m[1] for line in output_lines if (m := _RESTORING.search(line))]
        where = f" (restoring {started[-1]})" if started else ""
        raise LitestreamError(f"{what} exited {done.returncode}{where}: {_last_line(output_lines)}")
    missing = [str(output) for _, output in restores if not output.is_file()]
    if missing:
        raise LitestreamError(
            f"litestream restored no database at {len(missing)} of {len(restores)} paths "
            f"(first: {missing[0]}): their backup holds no restorable state"
        )


def write_config(
    path: Path,
    data_dir: Path,
    directory_replica_url: str,
    history_days: int,
    control: Path | None = None,
) -> None:
    """`control`: where Litestream listens for control requests (first_sync.py), if at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = litestream_config(str(data_dir), directory_replica_url, history_days)
    if control is not None:
        # Owner only; Litestream removes a socket file left by an earlier run before listening.
        config["socket"] = {"enabled": True, "path": str(control), "permissions": 0o600}
    path.write_text(json.dumps(config, indent=2))


def control_socket(state_dir: Path) -> Path:
    """Litestream's control socket: in the state directory, or in a private temporary
    directory when that path is too long for a Unix socket (108 bytes on Linux)."""
    path = state_dir / "litestream.sock"
    if len(os.fsencode(path)) < UNIX_PATH_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix="pds-aws-backup-")) / "litestream.sock"


def replicate_once(binary: str, config: Path, *, env: Mapping[str, str]) -> None:
    """Sync every database under the config's directory once, with a full snapshot, and exit."""
    args = [
        binary,
        "replicate",
        "-once",
        "-force-snapshot",
        "-no-expand-env",
        "-config",
        str(config),
    ]
    done = _run(args, "litestream replicate -once", env=env, timeout=ONCE_TIMEOUT_S)
    errors = [
        line
        for line in done.stdout.splitlines() + done.stderr.splitlines()
        if "level=ERROR" in line
    ]
    if done.returncode != 0 or errors:
        detail = errors or (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LitestreamError(
            f"litestream replicate -once exited {done.returncode}: {_last_line(detail)}"
        )


# Litestream errors that are the expected consequence of what the PDS does, not a failure:
# deleting an account removes its directory, and Litestream cannot close that database cleanly.
EXPECTED_ERRORS = ('msg="unregister database from store"',)


# A sync that raced the removal of its database's directory names that directory here.
_VANISHED_DB_DIR = re.compile(r"open ltx file (/\S+?)/\.[^/\s]+-litestream/")


# Litestream 0.5.17's shutdown race (the one ERROR line it logs for nothing). On SIGTERM,
# `Store.Close` closes every database first (store.go:264-274; `DB.Close` sets `db.f = nil`,
# db.go:856-863) and only then cancels the store context and waits for its monitors
# (store.go:277-278). A snapshot-level (9) tick in progress (store.go:582-603) keeps going:
# `Store.CompactDB` -> `DB.Snapshot` (store.go:796) -> `snapshotReader`, whose first call is
# `db.f.Stat()` (db.go:2807) on the nil `*os.File`: Go returns `os.ErrInvalid`, "invalid
# argument", and the monitor logs it as an error (store.go:593-594; the store context is not
# cancelled yet, so the shutdown filter there does not apply). The database's final sync has
# already run (db.go:833-847), so nothing is lost. Level-9 ticks run at start (store.go:566,
# then every second while a database is not ready, store.go:606-611) and at each
# `snapshot.interval` boundary of the wall clock, on any backend (S3 latency only widens the
# window). No setting reorders `Store.Close`; upstream's fix is open (benbjohnson/litestream
# PR #1397, #1530). So exactly that line, after Litestream announced its shutdown, is a warning;
# any other compaction error, and this one before a stop, still counts.
SHUTDOWN_MARK = 'msg="signal received, litestream shutting down"'
_SHUTDOWN_SNAPSHOT_RACE = re.compile(
    r'level=ERROR msg="compaction failed" (?:\S+ )*level=9 error="invalid argument"$'
)


def log_level(
    line: str,
    exists: Callable[[str], bool] = os.path.exists,
    *,
    shutting_down: bool = False,
) -> str:
    """Our level for one Litestream log line (ERROR lines count in the stack's metric filter).

    `shutting_down`: Litestream has logged SHUTDOWN_MARK (its `Store.Close` is running).
    """
    if "level=ERROR" in line:
        if any(mark in line for mark in EXPECTED_ERRORS):
            return "WARN"
        if shutting_down and _SHUTDOWN_SNAPSHOT_RACE.search(line):
            return "WARN"
        vanished = _VANISHED_DB_DIR.search(line)
        if vanished and "no such file or directory" in line and not exists(vanished.group(1)):
            return "WARN"
        return "ERROR"
    if "level=WARN" in line:
        return "WARN"
    return "INFO"


def _die_with_parent() -> None:
    # If the sidecar is SIGKILLed, Litestream must die too, as in a crashed task: an orphan
    # replicating on would outlive the data it protects (and confuse a local restart).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class Replicator:
    """`litestream replicate` as a child process, its log lines forwarded to ours."""

    READY_MARK = 'msg="found databases in directory"'

    def __init__(
        self, binary: str, config: Path, *, env: Mapping[str, str], log: Callable[[str, str], None]
    ) -> None:
        self.ready = threading.Event()
        self._log = log
        self.process = subprocess.Popen(
            [binary, "replicate", "-no-expand-env", "-config", str(config)],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Own session: a signal to our process group must not reach Litestream twice;
            # we forward SIGTERM ourselves, once, after the last key upload is queued.
            start_new_session=True,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        self._reader = threading.Thread(target=self._forward, name="litestream-log", daemon=True)
        self._reader.start()

    def _forward(self) -> None:
        assert self.process.stdout is not None
        shutting_down = False
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            if self.READY_MARK in line:
                self.ready.set()
            shutting_down = shutting_down or SHUTDOWN_MARK in line
            level = log_level(line, shutting_down=shutting_down)
            if level != "ERROR":
                # The metric filter matches the term ERROR anywhere in a line.
                line = line.replace("level=ERROR", "level=WARN")
            self._log(level, f"litestream: {line}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float) -> int:
        """SIGTERM (Litestream syncs every database a last time), wait, SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            code = -9
        self._reader.join(timeout=5)
        return code
