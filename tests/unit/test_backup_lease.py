"""The single-writer lease and conditional writes, on a file:// store (same conditions as S3's).

S3's own conditional writes (`If-None-Match: *`, `If-Match: ETag`, 412 when they fail) are
exercised against the local emulator in tests/integration/test_backup_lease.py; AWS documents
them in "Add preconditions to S3 operations with conditional requests"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pds_aws.backup.generations import may_start_empty, read_current_tagged, set_current
from pds_aws.backup.lease import FENCE_S, LEASE_OBJECT, LEASE_S, RENEW_S, Lease, LeaseLost
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore, PreconditionFailed, StoreError

GEN = "20261129T201500Z-1a2b"
OTHER = "20261130T101500Z-3c4d"


def _store(tmp_path: Path) -> FileStore:
    return FileStore(BackupUrl("file", "", str(tmp_path / "backup")))


def test_lease_numbers_fit_the_stop_timeout_and_the_idle_budget() -> None:
    assert LEASE_S > 120  # ECS's stop timeout: a draining holder is never overtaken
    assert 2 * RENEW_S < FENCE_S < LEASE_S  # two renewals may fail before the holder quits
    assert 3600 / RENEW_S < 50  # renewals per idle hour, within the < 100 requests budget


def test_conditional_writes_refuse_a_second_create_and_a_stale_etag(tmp_path: Path) -> None:
    store = _store(tmp_path)
    etag = store.put_conditional("X", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put_conditional("X", b"two", if_none_match=True)
    new = store.put_conditional("X", b"three", if_match=etag)
    with pytest.raises(PreconditionFailed):
        store.put_conditional("X", b"four", if_match=etag)
    tagged = store.get_tagged("X")
    assert tagged is not None and tagged.data == b"three" and tagged.etag == new
    assert [o.key for o in store.list_objects("")] == ["X"]  # the lock file is not an object


def test_current_is_created_once_and_moved_only_from_the_etag_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    set_current(store, GEN, replacing=None)
    with pytest.raises(PreconditionFailed):
        set_current(store, OTHER, replacing=None)
    tagged = read_current_tagged(store)
    assert tagged is not None and tagged[0] == GEN
    set_current(store, OTHER, replacing=tagged[1])
    with pytest.raises(PreconditionFailed):
        set_current(store, GEN, replacing=tagged[1])  # moved meanwhile: refused


def test_one_holder_at_a_time_until_released(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first, second = Lease(store, "first"), Lease(store, "second")
    assert first.try_acquire() is None
    why = second.try_acquire()
    assert why is not None and "held by first" in why
    first.renew()
    assert second.try_acquire() is not None
    first.release()
    assert second.try_acquire() is None
    body = json.loads(store.get_bytes(LEASE_OBJECT) or b"{}")
    assert body["holder"] == "second" and body["released"] is False


def test_an_expired_lease_is_taken_over_and_its_old_holder_loses_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old = Lease(store, "old", lease_s=3.0)
    assert old.try_acquire() is None
    lease_file = tmp_path / "backup" / LEASE_OBJECT
    # Make the lease look unrenewed for longer than its length (the store's clock).
    stat = lease_file.stat()
    import os

    os.utime(lease_file, (stat.st_atime - 10, stat.st_mtime - 10))
    new = Lease(store, "new", lease_s=3.0)
    assert new.try_acquire() is None
    with pytest.raises(LeaseLost, match="another sidecar took"):
        old.renew()
    assert not old.held and new.held


def test_a_holder_that_cannot_renew_gives_up_before_its_lease_expires(tmp_path: Path) -> None:
    now = [0.0]
    store = _store(tmp_path)
    lease = Lease(store, "holder", lease_s=60.0, clock=lambda: now[0])
    assert lease.try_acquire() is None

    def unreachable(*args: object, **kwargs: object) -> str:
        raise StoreError("unreachable")

    store.put_conditional = unreachable  # type: ignore[method-assign]
    now[0] = lease.fence_s - 1
    lease.renew()  # still within the fence: a warning, still held
    assert lease.held
    now[0] = lease.fence_s + 1
    with pytest.raises(LeaseLost, match="could not be renewed"):
        lease.renew()
    assert lease.fence_s < lease.lease_s


def test_only_a_recorded_first_boot_may_start_empty() -> None:
    first_boot = {"first_boot": True, "databases": 0, "key_files": 0, "reason": "first boot"}
    assert may_start_empty(first_boot)
    assert not may_start_empty({**first_boot, "data_seen": "2026-11-30T10:00:00Z"})
    assert not may_start_empty({**first_boot, "databases": 5})
    assert not may_start_empty({"reason": "first boot"})  # counts not recorded
    assert not may_start_empty({"reason": "restore-at", "databases": 0, "key_files": 0})
    assert not may_start_empty({})
