"""One writer at a time: a lease on the backup prefix, held with S3 conditional writes.

ECS's `maximumPercent` counts only RUNNING and PENDING tasks, so during a deploy or a
replacement a new task can start while the old one still drains or makes its final sync. The
`LEASE` object decides who may write the prefix (guides/BACKUP.md, "One writer: the lease"):

- take it: create with `If-None-Match: *`, or replace a released or expired lease with
  `If-Match: <its ETag>`; two starting sidecars cannot both win;
- renew it every `RENEW_S` with `If-Match: <our last ETag>`; a 412 means another sidecar took
  it: this one has lost it and must stop writing at once (the caller exits non-zero);
- release it (`released: true`, `If-Match`) at the very end of the final sync: the next task
  restores right away, and finds everything this one acknowledged.
- a holder that took the lease over records whom from (`previous`: holder, whether released,
  and when): a released previous lease marks the moment the old task's final sync ended, the
  restore point `pds-aws upgrade` returns to when a new PDS version has to be undone.

Expiry is judged by the store's clock (a GET's `Date` minus the lease's `LastModified`), so
the clocks of two tasks never matter. The numbers, against ECS's 120 s stop timeout:

- `LEASE_S` = 240 s, longer than the stop timeout: a holder that renewed before SIGTERM keeps
  the lease through its whole stop even if S3 is unreachable meanwhile, so a draining task is
  never overtaken. A task that crashed (SIGKILL, host lost) blocks its successor's restore for
  at most this long after its last renewal.
- `RENEW_S` = 80 s: 45 PUTs an hour, within the idle budget (< 100 requests an hour with
  Litestream's own ~43), and two renewals may fail before the holder must give up.
- `FENCE_S` = 200 s: a holder whose last successful renewal was *sent* this long ago gives
  up (exits non-zero) before anyone can see the lease expired: a renewal's `LastModified` is
  later than the moment it was sent, so the holder's deadline is always the earlier one.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pds_aws.backup.logs import error, info, iso_utc, warn
from pds_aws.backup.settings import DEFAULT_LEASE_S
from pds_aws.backup.store import BackupStore, PreconditionFailed, StoreError

LEASE_OBJECT = "LEASE"
LEASE_S = DEFAULT_LEASE_S  # 240 s
RENEW_S = LEASE_S / 3  # 80 s
FENCE_S = LEASE_S * 5 / 6  # 200 s
PROGRESS_S = 30.0  # one "still waiting" line this often


class LeaseLost(Exception):
    """Another sidecar holds the lease now, or ours could not be renewed in time."""


def new_holder_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{os.urandom(4).hex()}"


def lease_body(
    holder: str,
    lease_s: float,
    *,
    released: bool,
    previous: dict[str, object] | None = None,
) -> bytes:
    now = iso_utc(datetime.now(UTC))
    body: dict[str, object] = {
        "holder": holder,
        "renewed": now,
        "released": released,
        "lease_s": lease_s,
    }
    if previous is not None:
        body["previous"] = previous
    return json.dumps(body).encode()


def handed_over(data: bytes) -> dict[str, object]:
    """What a new holder records of the lease it took over: its holder, whether it was
    released (after a final sync) or had expired, and its last write (`at`)."""
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"holder": "?", "released": False, "at": None}
    return {
        "holder": str(body.get("holder", "?")),
        "released": body.get("released") is True,
        "at": body.get("renewed"),
    }


def is_free(data: bytes, age_s: float, default_lease_s: float) -> bool:
    """Whether a lease may be taken over: released by its holder, or expired (by the length
    its holder wrote into it)."""
    try:
        body = json.loads(data)
    except ValueError:
        return age_s >= default_lease_s
    if not isinstance(body, dict):
        return age_s >= default_lease_s
    length = body.get("lease_s")
    lease_s = float(length) if isinstance(length, int | float) else default_lease_s
    return body.get("released") is True or age_s >= lease_s


def describe(data: bytes) -> str:
    try:
        body = json.loads(data)
        return str(body.get("holder")) if isinstance(body, dict) else "?"
    except ValueError:
        return "?"


class Lease:
    def __init__(
        self,
        store: BackupStore,
        holder: str | None = None,
        *,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.lease_s = lease_s
        self.renew_s = lease_s / 3
        self.fence_s = lease_s * 5 / 6
        self.poll_s = min(2.0, lease_s / 6)
        self.holder = holder or new_holder_id()
        self.clock = clock
        self.etag: str | None = None
        self.previous: dict[str, object] | None = None  # the lease taken over, if any
        self.last_sent = 0.0  # clock() when the last successful write was sent
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self.etag is not None

    def try_acquire(self) -> str | None:
        """Take the lease if it is free; None when taken, else who holds it and since when."""
        current = self.store.get_tagged(LEASE_OBJECT)
        sent = self.clock()
        try:
            if current is None:
                etag = self.store.put_conditional(
                    LEASE_OBJECT,
                    lease_body(self.holder, self.lease_s, released=False),
                    if_none_match=True,
                )
            elif is_free(current.data, current.age_s, self.lease_s):
                previous = handed_over(current.data)
                etag = self.store.put_conditional(
                    LEASE_OBJECT,
                    lease_body(self.holder, self.lease_s, released=False, previous=previous),
                    if_match=current.etag,
                )
                self.previous = previous
            else:
                return (
                    f"held by {describe(current.data)}, renewed {current.age_s:.0f} s ago "
                    "(it expires unless renewed or released)"
                )
        except PreconditionFailed:
            return "another sidecar took it at the same moment"
        with self._lock:
            self.etag, self.last_sent = etag, sent
        return None

    def acquire(self, stop: threading.Event | None = None, *, timeout: float | None = None) -> bool:
        """Wait until the lease is ours (True), or `stop` is set or `timeout` passes (False)."""
        started = self.clock()
        next_report = started
        while True:
            why = self.try_acquire()
            if why is None:
                info(f"lease taken on the backup prefix (holder {self.holder})")
                return True
            now = self.clock()
            if now >= next_report:
                info(
                    f"waiting for the backup lease ({now - started:.0f} s): {why}; the "
                    "previous task releases it after its final sync"
                )
                next_report = now + PROGRESS_S
            if timeout is not None and now - started > timeout:
                return False
            if stop is not None:
                if stop.wait(self.poll_s):
                    return False
            else:
                time.sleep(self.poll_s)

    def renew(self) -> None:
        """Renew once; raise LeaseLost when another holder has it or when it is too late."""
        with self._lock:
            etag = self.etag
        if etag is None:
            raise LeaseLost("the lease is not held")
        sent = self.clock()
        try:
            new = self.store.put_conditional(
                LEASE_OBJECT,
                lease_body(self.holder, self.lease_s, released=False, previous=self.previous),
                if_match=etag,
            )
        except PreconditionFailed as exc:
            with self._lock:
                self.etag = None
            raise LeaseLost(f"another sidecar took the backup lease ({exc})") from exc
        except StoreError as exc:
            if self.clock() - self.last_sent > self.fence_s:
                with self._lock:
                    self.etag = None
                raise LeaseLost(
                    f"the backup lease could not be renewed for {self.fence_s:.0f} s ({exc}); "
                    "another task may take it"
                ) from exc
            warn(f"renewing the backup lease failed, retrying: {exc}")
            return
        with self._lock:
            self.etag, self.last_sent = new, sent

    def release(self) -> None:
        """Mark the lease released (after the final sync): the next task restores at once."""
        with self._lock:
            etag, self.etag = self.etag, None
        if etag is None:
            return
        try:
            self.store.put_conditional(
                LEASE_OBJECT,
                lease_body(self.holder, self.lease_s, released=True, previous=self.previous),
                if_match=etag,
            )
        except StoreError as exc:
            warn(f"releasing the backup lease failed ({exc}); it expires in {self.lease_s:.0f} s")
            return
        info("lease released")


class LeaseKeeper:
    """Renews the lease every `interval` in a thread; `lost` is set when it is lost."""

    def __init__(self, lease: Lease, on_lost: Callable[[], None]) -> None:
        self.lease = lease
        self.on_lost = on_lost
        self.interval = lease.renew_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # Renewal failures are retried at a fraction of the interval: the fence is close.
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                before = self.lease.last_sent
                self.lease.renew()
                wait = self.interval if self.lease.last_sent != before else self.interval / 4
            except LeaseLost as exc:
                error(f"{exc}: stopping replication now, the task must be replaced")
                self.lost.set()
                self.on_lost()
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
