"""Healthy only once Litestream has synced every database on disk once (guides/BACKUP.md,
"Start: Litestream's first sync").

Until a database's replica has synced once, Litestream does not know where the replica
stands and has uploaded nothing of it: a write the PDS made to it would be lost in a crash
however long ago it was acknowledged. For a database Litestream resumes at its restored
position (resume.py) that first sync uploads nothing; for any other (one that could not be
resumed, one adopted on a first boot) it uploads the whole database. Litestream's control
socket reports each database's last successful replica sync (`GET /list`, `last_sync_at`,
set at the end of `Replica.Sync`; Litestream 0.5 `server.go`), so the wait costs the backup
store no request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path

from pds_aws.backup.logs import error, info

POLL_S = 0.25
PROGRESS_S = 15.0
REQUEST_TIMEOUT_S = 5.0
# A pass that has not ended by then will not: the sidecar exits 1 and is never healthy. On ECS
# the backup container's health-check start period (300 s) usually ends it first (the task is
# replaced); the allowance per database is for large adoptions and slow emulated stores.
TIMEOUT_S = 180.0
TIMEOUT_PER_DATABASE_S = 1.0


def sync_timeout(databases: int) -> float:
    return TIMEOUT_S + TIMEOUT_PER_DATABASE_S * databases


class Outcome(Enum):
    DONE = "done"
    STOPPED = "stopped"  # a stop signal or a lost lease: the caller's stop path decides
    EXITED = "exited"  # Litestream exited
    TIMED_OUT = "timed out"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("litestream", timeout=REQUEST_TIMEOUT_S)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def synced_databases(control: Path, data_dir: Path) -> set[str]:
    """The databases (paths below `data_dir`) whose replica Litestream has synced at least
    once; raises OSError when its control socket does not answer (yet)."""
    connection = _UnixConnection(control)
    try:
        connection.request("GET", "/list")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"litestream's control socket answered {response.status}")
    try:
        listed = json.loads(body)["databases"]
    except (ValueError, KeyError, TypeError) as exc:
        raise OSError(f"litestream's control socket answered something else: {exc}") from exc
    return {
        Path(os.path.relpath(db["path"], data_dir)).as_posix()
        for db in listed
        if db.get("last_sync_at")
    }


def wait_first_sync(
    control: Path,
    data_dir: Path,
    databases: Iterable[str],
    *,
    stop: threading.Event,
    litestream_exited: Callable[[], bool],
    poll: float = POLL_S,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Poll Litestream until every one of `databases` has synced once."""
    expected = set(databases)
    timeout = sync_timeout(len(expected)) if timeout is None else timeout
    started = clock()
    next_report = started + PROGRESS_S
    pending = sorted(expected)
    while True:
        if stop.is_set():
            return Outcome.STOPPED
        if litestream_exited():
            return Outcome.EXITED
        with contextlib.suppress(OSError):  # Litestream is starting: no socket yet
            pending = sorted(expected - synced_databases(control, data_dir))
        elapsed = clock() - started
        if not pending:
            info(
                f"Litestream's first sync: {len(expected)} databases in the backup after "
                f"{elapsed:.1f} s"
            )
            return Outcome.DONE
        if elapsed > timeout:
            error(
                f"Litestream's first sync: {len(pending)} of {len(expected)} databases still "
                f"not synced after {timeout:.0f} s (e.g. {pending[0]}); not becoming healthy: "
                "the PDS would acknowledge writes that are not backed up"
            )
            return Outcome.TIMED_OUT
        if clock() >= next_report:
            info(
                f"Litestream's first sync: {len(pending)} of {len(expected)} databases not "
                f"yet synced ({elapsed:.0f} s)"
            )
            next_report = clock() + PROGRESS_S
        stop.wait(poll)
