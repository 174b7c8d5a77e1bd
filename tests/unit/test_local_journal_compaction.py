"""The local AWS journal, compacted after a replay, replays to the same state and is smaller.

moto runs in this process behind the journaling middleware, served by a werkzeug server in a
thread, so the requests are the ones boto3 really sends (SigV4, checksums, conditional writes).
A "crash" is a reset of moto's memory; a "start" is a replay of the journal into it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from pds_aws.local.aws_emulator import Journal, JournalingApp, KmsKeyStore, replay
from pds_aws.local.journal_compaction import compact

REGION = "us-east-2"


@pytest.fixture
def moto_app() -> Iterator[Any]:
    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_api_backend.reset()
    yield DomainDispatcherApplication(create_backend_app)
    moto_api_backend.reset()


def crash() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


class Served:
    """The journaling moto on a loopback port, as the emulator process serves it."""

    def __init__(self, app: Any, state_dir: Path) -> None:
        from werkzeug.serving import make_server

        self.journal = Journal(state_dir / "requests.jsonl")
        self.keys = KmsKeyStore(state_dir / "kms-keys.jsonl")
        self.server = make_server(
            "127.0.0.1", 0, JournalingApp(app, self.journal, self.keys), threaded=True
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=f"http://127.0.0.1:{self.server.server_port}",
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=BotoConfig(s3={"addressing_style": "path"}),
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


def state() -> dict[str, Any]:
    """Everything a client of the local AWS can observe, read from moto's models."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from moto.kms.models import kms_backends
    from moto.s3.models import FakeKey, s3_backends
    from moto.secretsmanager.models import secretsmanager_backends

    buckets: dict[str, Any] = {}
    for account in list(s3_backends.keys()):
        for partition in list(s3_backends[account].keys()):
            for name, bucket in s3_backends[account][partition].buckets.items():
                objects = {
                    key_name: (
                        hashlib.sha256(key.value).hexdigest(),
                        key.last_modified,  # microseconds: a fresh write would differ
                        key.etag,
                        dict(key.metadata),
                        key.storage_class,
                        key.checksum_algorithm,
                        key.checksum_value,
                    )
                    for key_name, key in bucket.keys.items()
                    if isinstance(key, FakeKey)
                }
                buckets[name] = (bucket.versioning_status, bucket.policy, objects)
    keys: dict[str, Any] = {}
    aliases: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for account in list(kms_backends.keys()):
        for region in list(kms_backends[account].keys()):
            backend = kms_backends[account][region]
            for key_id, key in backend.keys.items():
                public = key.private_key.private_key.public_key().public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
                keys[key_id] = (key.arn, key.key_spec, key.key_state, key.policy, public)
                aliases.update({alias: key_id for alias in key.aliases})
            for secret_id, secret in secretsmanager_backends[account][region].secrets.items():
                # The ARN's random suffix is drawn again by a replay (the runtime uses names).
                secrets[secret_id] = {
                    version: (value.get("secret_string"), value.get("version_stages"))
                    for version, value in secret.versions.items()
                }
    return {"buckets": buckets, "keys": keys, "aliases": aliases, "secrets": secrets}


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, object by object (an empty list when the states are the same)."""
    found = []
    for part in ("keys", "aliases", "secrets"):
        if before[part] != after[part]:
            found.append(f"{part}: {before[part]} != {after[part]}")
    for name in sorted(set(before["buckets"]) | set(after["buckets"])):
        if name not in before["buckets"] or name not in after["buckets"]:
            found.append(f"bucket {name} only on one side")
            continue
        (*config_a, objects_a), (*config_b, objects_b) = (
            before["buckets"][name],
            after["buckets"][name],
        )
        if config_a != config_b:
            found.append(f"bucket {name}: {config_a} != {config_b}")
        for key in sorted(set(objects_a) | set(objects_b)):
            if objects_a.get(key) != objects_b.get(key):
                found.append(f"s3://{name}/{key}: {objects_a.get(key)} != {objects_b.get(key)}")
    return found


def busy_local_aws(served: Served) -> dict[str, Any]:
    """Requests like a local run's: Litestream-style uploads, overwrites and deletes, blobs
    copied out of tmp/, a lease with conditional writes, a KMS key, secrets."""
    s3, kms, secrets = served.client("s3"), served.client("kms"), served.client("secretsmanager")
    location = {"LocationConstraint": REGION}
    s3.create_bucket(Bucket="backup", CreateBucketConfiguration=location)
    s3.put_bucket_versioning(Bucket="backup", VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket="blobs", CreateBucketConfiguration=location)
    s3.create_bucket(Bucket="gone", CreateBucketConfiguration=location)
    s3.delete_bucket(Bucket="gone")
    prefix = "generations/g1/actors/ab/did:plc:abc/store.sqlite"
    for level in range(2):
        for txid in range(1, 7):
            s3.put_object(
                Bucket="backup", Key=f"{prefix}/{level:04x}/{txid:016x}.ltx", Body=b"L" * 900
            )
        if level:  # compaction: the level below is deleted once merged
            s3.delete_objects(
                Bucket="backup",
                Delete={
                    "Objects": [
                        {"Key": f"{prefix}/{level - 1:04x}/{txid:016x}.ltx"} for txid in range(1, 9)
                    ]
                },
            )
    for generation in range(3):
        s3.put_object(Bucket="backup", Key="CURRENT", Body=f"g{generation}".encode())
    s3.put_object(Bucket="backup", Key="lease", Body=b"holder-1", IfNoneMatch="*")
    etag = s3.head_object(Bucket="backup", Key="lease")["ETag"]
    s3.put_object(Bucket="backup", Key="lease", Body=b"holder-1 renewed", IfMatch=etag)
    s3.put_object(
        Bucket="blobs",
        Key="tmp/did:plc:abc/bafkrei x+y%z é",
        Body=bytes(range(256)) * 8,
        ContentType="image/png",
        Metadata={"origin": "upload"},
        ChecksumAlgorithm="SHA256",
    )
    s3.copy_object(
        Bucket="blobs",
        Key="blocks/did:plc:abc/bafkrei x+y%z é",
        CopySource={"Bucket": "blobs", "Key": "tmp/did:plc:abc/bafkrei x+y%z é"},
    )
    s3.delete_object(Bucket="blobs", Key="tmp/did:plc:abc/bafkrei x+y%z é")
    upload = s3.create_multipart_upload(Bucket="blobs", Key="abandoned")
    s3.upload_part(
        Bucket="blobs", Key="abandoned", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    s3.abort_multipart_upload(Bucket="blobs", Key="abandoned", UploadId=upload["UploadId"])
    key_id = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    kms.create_alias(AliasName="alias/rotation", TargetKeyId=key_id)
    secrets.create_secret(Name="jwt", SecretString="first")
    secrets.put_secret_value(SecretId="jwt", SecretString="second")
    return {"public_key": kms.get_public_key(KeyId="alias/rotation")["PublicKey"]}


def test_compacted_journal_replays_to_the_same_state_and_is_smaller(
    tmp_path: Path, moto_app: Any
) -> None:
    served = Served(moto_app, tmp_path)
    written = busy_local_aws(served)
    served.stop()
    before = state()
    lines_before = len((tmp_path / "requests.jsonl").read_text().splitlines())

    crash()
    journal = Journal(tmp_path / "requests.jsonl")
    assert replay(moto_app, journal, KmsKeyStore(tmp_path / "kms-keys.jsonl")) == lines_before
    assert differences(before, state()) == []  # the uncompacted replay is exact
    compaction = compact(journal)
    assert compaction.skipped == ""
    assert compaction.requests_before == lines_before
    # 9 requests that are not object operations (3 CreateBucket, versioning, DeleteBucket,
    # CreateKey, CreateAlias, CreateSecret, PutSecretValue) + one PUT per current object.
    objects = sum(len(bucket[2]) for bucket in before["buckets"].values())
    assert compaction.requests_after == 9 + objects < lines_before
    assert compaction.bytes_after < compaction.bytes_before / 2
    assert len((tmp_path / "requests.jsonl").read_text().splitlines()) == (
        compaction.requests_after
    )
    assert oct((tmp_path / "requests.jsonl").stat().st_mode & 0o777) == "0o600"

    crash()
    journal = Journal(tmp_path / "requests.jsonl")
    keys = KmsKeyStore(tmp_path / "kms-keys.jsonl")
    assert replay(moto_app, journal, keys) == compaction.requests_after
    assert differences(before, state()) == []

    # The compacted journal takes new requests, conditional ones included, and a second
    # start replays both parts.
    served = Served(moto_app, tmp_path)
    s3 = served.client("s3")
    etag = s3.head_object(Bucket="backup", Key="lease")["ETag"]
    s3.put_object(Bucket="backup", Key="lease", Body=b"holder-2", IfMatch=etag)
    public_key = served.client("kms").get_public_key(KeyId="alias/rotation")["PublicKey"]
    assert public_key == written["public_key"]
    served.stop()
    after_write = state()
    crash()
    replay(moto_app, Journal(tmp_path / "requests.jsonl"), KmsKeyStore(tmp_path / "kms-keys.jsonl"))
    assert differences(after_write, state()) == []
    lease = after_write["buckets"]["backup"][2]["lease"]
    assert lease[0] == hashlib.sha256(b"holder-2").hexdigest()


def test_a_journal_with_object_tags_is_left_as_it_is(tmp_path: Path, moto_app: Any) -> None:
    served = Served(moto_app, tmp_path)
    s3 = served.client("s3")
    s3.create_bucket(Bucket="blobs", CreateBucketConfiguration={"LocationConstraint": REGION})
    for _ in range(3):
        s3.put_object(Bucket="blobs", Key="k", Body=b"v")
    s3.put_object_tagging(Bucket="blobs", Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]})
    served.stop()
    journal_text = (tmp_path / "requests.jsonl").read_text()

    crash()
    journal = Journal(tmp_path / "requests.jsonl")
    replay(moto_app, journal, KmsKeyStore(tmp_path / "kms-keys.jsonl"))
    compaction = compact(journal)
    assert "?tagging" in compaction.skipped
    assert (tmp_path / "requests.jsonl").read_text() == journal_text


def test_a_failed_rewrite_keeps_the_old_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "requests.jsonl")
    (tmp_path / "requests.jsonl").write_text('{"old": 1}\n')

    def broken() -> Iterator[dict[str, Any]]:
        yield {"new": 1}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        journal.rewrite(broken())
    assert (tmp_path / "requests.jsonl").read_text() == '{"old": 1}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["requests.jsonl"]
