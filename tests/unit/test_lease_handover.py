"""The lease records whom it was taken over from: the restore point of `pds-aws upgrade`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pds_aws.backup.lease import LEASE_OBJECT, Lease
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore


def _store(tmp_path: Path) -> FileStore:
    return FileStore(BackupUrl("file", "", str(tmp_path / "backup")))


def _body(store: FileStore) -> dict[str, object]:
    body = json.loads(store.get_bytes(LEASE_OBJECT) or b"{}")
    assert isinstance(body, dict)
    return body


def test_a_released_lease_is_recorded_with_its_release_time(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old, new = Lease(store, "old-task"), Lease(store, "new-task")
    assert old.try_acquire() is None
    assert _body(store).get("previous") is None  # a first holder took it over from no one
    old.release()
    released_at = _body(store)["renewed"]
    assert new.try_acquire() is None
    previous = {"holder": "old-task", "released": True, "at": released_at}
    assert _body(store)["previous"] == previous
    new.renew()  # kept through renewals and the release
    assert _body(store)["previous"] == previous
    new.release()
    assert _body(store)["previous"] == previous and _body(store)["released"] is True


def test_an_expired_lease_is_recorded_as_not_released(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old = Lease(store, "crashed", lease_s=3.0)
    assert old.try_acquire() is None
    lease_file = tmp_path / "backup" / LEASE_OBJECT
    stat = lease_file.stat()
    os.utime(lease_file, (stat.st_atime - 10, stat.st_mtime - 10))
    new = Lease(store, "replacement", lease_s=3.0)
    assert new.try_acquire() is None
    previous = _body(store)["previous"]
    assert isinstance(previous, dict)
    assert previous["holder"] == "crashed" and previous["released"] is False
