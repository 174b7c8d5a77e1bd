"""Running Litestream 0.5: one restore per database, the replicate child, a one-shot sync."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from pds_aws.backup.plan import litestream_config
from pds_aws.errors import PdsAwsError

RESTORE_TIMEOUT_S = 900.0
ONCE_TIMEOUT_S = 900.0
_PR_SET_PDEATHSIG = 1


class LitestreamError(PdsAwsError):
    pass


def litestream_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Our environment without AWS_CA_BUNDLE: when it is set at all, Litestream's S3 client
    fails (`unable to add custom RootCAs HTTPClient`); the system roots serve real S3."""
    return {k: v for k, v in environ.items() if k != "AWS_CA_BUNDLE"}


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
    try:
        done = subprocess.run(
            args,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=RESTORE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LitestreamError(
            f"litestream restore timed out after {RESTORE_TIMEOUT_S:.0f} s"
        ) from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LitestreamError(
            f"litestream restore exited {done.returncode}: {detail[-1] if detail else 'no output'}"
        )


def write_config(path: Path, data_dir: Path, directory_replica_url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(litestream_config(str(data_dir), directory_replica_url), indent=2))


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
    try:
        done = subprocess.run(
            args, env=dict(env), capture_output=True, text=True, timeout=ONCE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LitestreamError(
            f"litestream replicate -once timed out after {ONCE_TIMEOUT_S:.0f} s"
        ) from exc
    errors = [
        line
        for line in done.stdout.splitlines() + done.stderr.splitlines()
        if "level=ERROR" in line
    ]
    if done.returncode != 0 or errors:
        detail = errors or (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LitestreamError(
            f"litestream replicate -once exited {done.returncode}: "
            f"{detail[-1] if detail else 'no output'}"
        )


# Litestream errors that are the expected consequence of what the PDS does, not a failure:
# deleting an account removes its directory, and Litestream cannot close that database cleanly.
EXPECTED_ERRORS = ('msg="unregister database from store"',)


# A sync that raced the removal of its database's directory names that directory here.
_VANISHED_DB_DIR = re.compile(r"open ltx file (/\S+?)/\.[^/\s]+-litestream/")


def log_level(line: str, exists: Callable[[str], bool] = os.path.exists) -> str:
    """Our level for one Litestream log line (ERROR lines count in the stack's metric filter)."""
    if "level=ERROR" in line:
        if any(mark in line for mark in EXPECTED_ERRORS):
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
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            if self.READY_MARK in line:
                self.ready.set()
            level = log_level(line)
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
