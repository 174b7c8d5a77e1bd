"""Mirroring the PDS's plain files (keys) into a file:// backup store; no processes."""

from __future__ import annotations

from pathlib import Path

from pds_aws.backup.layout import file_key
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore

GEN = "20261129T201500Z-1a2b"


def test_mirror_uploads_new_and_changed_keys_and_keeps_account_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    account = data / "actors" / "ab" / "did:plc:alice"
    reserved = data / "actors" / "reserved_keys"
    account.mkdir(parents=True)
    reserved.mkdir(parents=True)
    (account / "key").write_bytes(b"k1")
    (account / "store.sqlite").write_bytes(b"not a plain file")
    (reserved / "did:key:r").write_bytes(b"r1")
    store = FileStore(BackupUrl("file", "", str(tmp_path / "backup")))
    mirror = FileMirror(store, data, GEN)

    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, "actors/ab/did:plc:alice/key")) == b"k1"
    assert store.get_bytes(file_key(GEN, "actors/reserved_keys/did:key:r")) == b"r1"
    assert store.get_bytes(file_key(GEN, "actors/ab/did:plc:alice/store.sqlite")) is None

    (reserved / "did:key:r").write_bytes(b"r2-longer")
    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, "actors/reserved_keys/did:key:r")) == b"r2-longer"

    (reserved / "did:key:r").unlink()
    (account / "key").unlink()
    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, "actors/reserved_keys/did:key:r")) is None
    # Account keys stay: a restore to before the deletion needs them.
    assert store.get_bytes(file_key(GEN, "actors/ab/did:plc:alice/key")) == b"k1"
