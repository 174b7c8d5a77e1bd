"""FILES: the generation's plain files in one object (backup/bundle.py), written by the mirror
through the S3 store against moto in process; the restore's use of it is in
tests/integration/test_backup_sidecar.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pds_aws.backup import bundle
from pds_aws.backup.layout import bundle_key, file_key
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import read_generation
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import S3Store, StoreError

GEN = "20261201T001500Z-1a2b"
BUCKET = "bundle-test"
KEY = "actors/ab/did:plc:alice/key"
RESERVED = "actors/reserved_keys/did:key:r"


@pytest.fixture
def store() -> Iterator[S3Store]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield S3Store(BackupUrl("s3", BUCKET, "pds"), region="us-east-1", endpoint=None)


def stored_bundle(store: S3Store) -> dict[str, bundle.Bundled]:
    raw = store.get_bytes(bundle_key(GEN))
    assert raw is not None, "no FILES object"
    return bundle.decode(raw)


def listed_etags(store: S3Store) -> dict[str, str]:
    return read_generation(store.list_objects(f"generations/{GEN}/"), GEN).file_etags


def test_encode_decode_round_trip_and_unreadable_input_is_empty() -> None:
    entries = {
        KEY: bundle.Bundled('"e1"', bytes(range(256))),
        RESERVED: bundle.Bundled('"e2"', b""),
    }
    assert bundle.decode(bundle.encode(entries)) == entries
    for raw in (b"", b"not json", b"[]", b'{"version": 2, "files": {}}', b'{"version": 1}'):
        assert bundle.decode(raw) == {}
    assert bundle.decode(b'{"version": 1, "files": {"k": {"etag": "e", "data": "%%%"}}}') == {}


def test_only_bytes_whose_etag_is_the_listed_one_are_current() -> None:
    """What FILES relies on in S3 (Amazon S3 API Reference, the `Object` data type: "The ETag
    reflects changes only to the contents of an object, not its metadata"; it is an MD5 of the
    data only for single-part plaintext or SSE-S3 objects, not for SSE-KMS, which the backup
    bucket may use): an object whose contents changed has another ETag, and the same ETag is
    reported by PutObject and by the listing. So FILES compares the ETags as opaque strings and
    never computes one from the bytes: an unequal ETag (rewritten, or re-encrypted with the
    same bytes) means the file is fetched from its own object."""
    entries = {KEY: bundle.Bundled('"new"', b"k2"), RESERVED: bundle.Bundled('"old"', b"r1")}
    current = bundle.current_bytes(entries, {KEY: '"new"', RESERVED: '"rewritten"'})
    assert current == {KEY: b"k2"}


def test_mirror_keeps_files_equal_to_the_file_objects(store: S3Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / KEY).parent.mkdir(parents=True)
    (data / RESERVED).parent.mkdir(parents=True)
    (data / KEY).write_bytes(b"k1")
    (data / RESERVED).write_bytes(b"r1")
    mirror = FileMirror(store, data, GEN)

    assert mirror.sync() == 0
    etags = listed_etags(store)
    assert set(etags) == {KEY, RESERVED}
    assert bundle.current_bytes(stored_bundle(store), etags) == {KEY: b"k1", RESERVED: b"r1"}

    (data / RESERVED).write_bytes(b"r2-longer")
    assert mirror.sync() == 0
    current = bundle.current_bytes(stored_bundle(store), listed_etags(store))
    assert current == {KEY: b"k1", RESERVED: b"r2-longer"}

    # A consumed reserved key leaves the backup and FILES; an account key stays in both.
    (data / RESERVED).unlink()
    (data / KEY).unlink()
    assert mirror.sync() == 0
    assert set(stored_bundle(store)) == {KEY}
    assert store.get_bytes(file_key(GEN, KEY)) == b"k1"


def test_a_restart_rewrites_files_only_when_the_restore_did_not_take_every_file_from_it(
    store: S3Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / KEY).parent.mkdir(parents=True)
    (data / KEY).write_bytes(b"k1")
    assert FileMirror(store, data, GEN).sync() == 0
    contents = read_generation(store.list_objects(f"generations/{GEN}/"), GEN)
    written = store.get_tagged(bundle_key(GEN))
    assert written is not None

    every = FileMirror(store, data, GEN)
    assert every.adopt_restored(contents.files, contents.file_etags, frozenset({KEY})) == 1
    assert every.sync() == 0
    unchanged = store.get_tagged(bundle_key(GEN))
    assert unchanged is not None and unchanged.etag == written.etag

    store.delete(bundle_key(GEN))  # a backup written before FILES existed
    fetched = FileMirror(store, data, GEN)
    assert fetched.adopt_restored(contents.files, contents.file_etags, frozenset()) == 1
    assert fetched.sync() == 0
    assert bundle.current_bytes(stored_bundle(store), listed_etags(store)) == {KEY: b"k1"}


def test_a_failed_files_write_is_retried_and_is_not_a_failed_key_upload(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / KEY).parent.mkdir(parents=True)
    (data / KEY).write_bytes(b"k1")
    mirror = FileMirror(store, data, GEN)
    put_bytes = store.put_bytes

    def refuse_files(key: str, body: bytes) -> str | None:
        if key == bundle_key(GEN):
            raise StoreError("put FILES failed: SlowDown")
        return put_bytes(key, body)

    monkeypatch.setattr(store, "put_bytes", refuse_files)
    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, KEY)) == b"k1"
    assert store.get_bytes(bundle_key(GEN)) is None

    monkeypatch.setattr(store, "put_bytes", put_bytes)
    assert mirror.sync() == 0
    assert bundle.current_bytes(stored_bundle(store), listed_etags(store)) == {KEY: b"k1"}
